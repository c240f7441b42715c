// Prettier (npm run format; npm run format:check). The code was written with long lines, double
// quotes, semicolons and trailing commas: these settings keep that style, and 200 columns is the width
// at which formatting the existing tree rewrites the fewest lines (most lines are under 110 columns;
// one in a hundred is longer than 185).
/** @type {import("prettier").Config} */
export default {
  printWidth: 200,
  semi: true,
  singleQuote: false,
  trailingComma: "all",
  arrowParens: "always",
};
