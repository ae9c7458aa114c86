/** An error's message for a log line or a warning: its first line (client errors run to pages). */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message.split('\n')[0]! : String(err);
}
