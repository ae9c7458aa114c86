/** Input that is not a usable AdmissionReview: answered with HTTP 400. */
export class InvalidReviewError extends Error {
  // Stryker disable next-line StringLiteral: only names the error in a stack dump; callers tell errors apart by class
  override name = 'InvalidReviewError';
}

/** A JSON value's type as a user would name it in an error. */
export function typeName(value: unknown): string {
  if (value === null) return 'null';
  return Array.isArray(value) ? 'array' : typeof value;
}
