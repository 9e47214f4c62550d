// ESM + ts-jest as in actions/typescript-action; tsconfig's isolatedModules keeps the transform fast.
export default {
  testEnvironment: 'node',
  extensionsToTreatAsEsm: ['.ts'],
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  transform: {
    '^.+\\.ts$': ['ts-jest', { useESM: true }]
  },
  // The fault-injection soak (~4 minutes) runs on its own: `npm run test:soak` (scripts/test.sh runs both).
  testMatch: process.env.OCI_PROMOTE_SOAK ? ['**/__tests__/faults.test.ts'] : ['**/__tests__/**/*.test.ts'],
  testPathIgnorePatterns: process.env.OCI_PROMOTE_SOAK ? ['/node_modules/'] : ['/node_modules/', '/__tests__/faults\\.test\\.ts$'],
  testTimeout: 60000,
  // Registry-backed suites start their own processes; two workers fit the 2-core machines.
  maxWorkers: 2
}
