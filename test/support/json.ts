// A parsed JSON value the tests reach into freely (log lines, response bodies): the assertions
// check the shape, so the type does not have to.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Json = Record<string, any>;
