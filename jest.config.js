// ESM + ts-jest as in actions/typescript-action; tsconfig's isolatedModules keeps the transform fast.
export default {
  testEnvironment: 'node',
  extensionsToTreatAsEsm: ['.ts'],
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  transform: {
    '^.+\\.ts$': ['ts-jest', { useESM: true }]
  },
  testMatch: ['**/__tests__/**/*.test.ts'],
  testTimeout: 60000,
  // Registry-backed suites start their own processes; two workers fit the 2-core machines.
  maxWorkers: 2
}
