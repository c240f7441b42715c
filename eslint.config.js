// ESLint for the whole tree (npm run lint; scripts/test.sh runs it before the tests). Formatting is
// Prettier's job (prettier.config.js): no stylistic rules here.
import js from "@eslint/js";
import { defineConfig, globalIgnores } from "eslint/config";
import globals from "globals";
import tseslint from "typescript-eslint";

export default defineConfig([
  globalIgnores(["dist/", "node_modules/", "bench/results/", "test-artifacts/", "tmp/", "data/", "deploy/compose/"]),

  {
    files: ["**/*.{ts,mts,mjs,js}"],
    extends: [js.configs.recommended, tseslint.configs.recommended],
    languageOptions: {
      ecmaVersion: 2022,
      sourceType: "module",
      globals: globals.node,
    },
    linterOptions: { reportUnusedDisableDirectives: "error" },
    rules: {
      eqeqeq: ["error", "always"],
      "no-console": "error",
      "@typescript-eslint/consistent-type-imports": ["error", { prefer: "type-imports", fixStyle: "inline-type-imports" }],
      // `_name`: a parameter there for its position, or a key left out of a rest (`{ sid: _sid, ...rest }`).
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
    },
  },

  // Type-aware rules: unawaited promises and promises passed where a plain callback is expected. The
  // code marks a deliberate fire-and-forget with `void`.
  {
    files: ["**/*.{ts,mts}"],
    languageOptions: {
      parserOptions: {
        projectService: { allowDefaultProject: ["scripts/*.ts"], defaultProject: "tsconfig.json" },
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      "@typescript-eslint/no-floating-promises": [
        "error",
        // node:test's test() and describe() return promises that the runner itself awaits.
        { allowForKnownSafeCalls: [{ from: "package", package: "node:test", name: ["test", "describe", "it", "suite", "before", "after", "beforeEach", "afterEach"] }] },
      ],
      "@typescript-eslint/no-misused-promises": "error",
      "@typescript-eslint/await-thenable": "error",
    },
  },

  // Command-line programs: printing is their output.
  {
    files: ["scripts/**", "bench/**", "soak/**", "fuzz/**", "deploy/**/*.mjs"],
    rules: { "no-console": "off" },
  },
]);
