// asl-validator 4 ships no type declarations; only the call the tests make.
declare module 'asl-validator' {
  function validator(definition: unknown, options?: { checkPaths?: boolean; checkArn?: boolean }): { isValid: boolean; errors: unknown[]; errorsText(separator?: string): string };
  export default validator;
}
