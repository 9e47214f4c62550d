// ESLint with typescript-eslint's type-checked rules (as actions/typescript-action and sigstore-js use them).
// Formatting is Prettier's alone (.prettierrc.json); `npm run lint` runs both, and scripts/test.sh runs lint.
import js from '@eslint/js'
import tseslint from 'typescript-eslint'

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'coverage/'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname }
    },
    rules: {
      // Interfaces return promises (Repository, RecordSigner, EvidenceBatch.read); an implementation with nothing to await is fine.
      '@typescript-eslint/require-await': 'off',
      // `const { tag: _dropped, ...rest } = ref` is how a property is left out.
      '@typescript-eslint/no-unused-vars': ['error', { varsIgnorePattern: '^_', argsIgnorePattern: '^_', ignoreRestSiblings: true }]
    }
  },
  {
    // Tests read JSON outputs, summaries and HTTP bodies and assert on them: a value of an unexpected shape fails the
    // assertion, so the any-propagation rules only add casts there. Node's http handlers may be async in a test server.
    files: ['__tests__/**/*.ts'],
    rules: {
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: { arguments: false } }]
    }
  },
  { files: ['**/*.js', '**/*.mjs'], languageOptions: { globals: { process: 'readonly', URL: 'readonly', console: 'readonly' } } },
  { files: ['**/*.js', '**/*.mjs'], ...tseslint.configs.disableTypeChecked }
)
