import { expect, it } from '@jest/globals'
import { readFileSync } from 'node:fs'

it('runs on the Node major that action.yml declares (runs.using: node24)', () => {
  const declared = /using:\s*node(\d+)/.exec(readFileSync(new URL('../action.yml', import.meta.url), 'utf8'))?.[1]
  expect(declared).toBe('24')
  expect(process.versions.node.split('.')[0]).toBe(declared)
})
