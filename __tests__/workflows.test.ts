// The workflows and action.yml as GitHub reads them: every file parses and validates under GitHub's own workflow
// parser (@actions/workflow-parser), and the reusable promote workflow says what the README promises of it.
import { describe, expect, it } from '@jest/globals'
import { readFileSync, readdirSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('../', import.meta.url))
const workflowFiles = [
  ...readdirSync(`${root}.github/workflows`)
    .filter((f) => /\.ya?ml$/.test(f))
    .map((f) => `.github/workflows/${f}`),
  ...readdirSync(`${root}examples`)
    .filter((f) => /\.ya?ml$/.test(f))
    .map((f) => `examples/${f}`)
]

/** The parser's serialized tokens (mappings as {map: [{Key, Value}]}, sequences as {seq}) as plain values. */
function plain(token: unknown): unknown {
  if (token === null || typeof token !== 'object') return token
  const t = token as { map?: { Key: unknown; Value: unknown }[]; seq?: unknown[]; expr?: string }
  if (t.map) return Object.fromEntries(t.map.map(({ Key, Value }) => [String(plain(Key)), plain(Value)]))
  if (t.seq) return t.seq.map(plain)
  if (t.expr !== undefined) return `\${{ ${t.expr} }}`
  return token
}

async function parse(file: string) {
  const { parseWorkflow, NoOperationTraceWriter, convertWorkflowTemplate } = await import('@actions/workflow-parser')
  const result = parseWorkflow({ name: file, content: readFileSync(`${root}${file}`, 'utf8') }, new NoOperationTraceWriter())
  const template = result.value ? await convertWorkflowTemplate(result.context, result.value) : undefined
  return {
    errors: [...result.context.errors.getErrors().map((e) => e.message), ...(template?.errors ?? []).map((e) => e.Message)],
    template,
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- a parsed workflow, asserted on by the tests below
    raw: plain(JSON.parse(JSON.stringify(result.value))) as Record<string, any>
  }
}

async function actionInputs(): Promise<string[]> {
  const { parseAction, convertActionTemplate } = await import('@actions/workflow-parser/actions/index')
  const { NoOperationTraceWriter } = await import('@actions/workflow-parser')
  const result = parseAction({ name: 'action.yml', content: readFileSync(`${root}action.yml`, 'utf8') }, new NoOperationTraceWriter())
  expect(result.context.errors.getErrors().map((e) => e.message)).toEqual([])
  const action = convertActionTemplate(result.context, result.value!)
  expect(action.runs).toMatchObject({ using: 'node24', main: 'dist/index.js' })
  return (action.inputs ?? []).map((i) => i.id)
}

describe("GitHub's workflow parser", () => {
  it.each(workflowFiles)('%s parses and validates', async (file) => {
    expect((await parse(file)).errors).toEqual([])
  })

  it('action.yml validates against the action schema', async () => {
    expect(await actionInputs()).toContain('image')
  })
})

describe('the reusable promote workflow', () => {
  it('is called with workflow_call, with the inputs, secrets and outputs the README shows', async () => {
    const { raw } = await parse('.github/workflows/promote.yml')
    const call = raw['on']['workflow_call']
    expect(Object.keys(call.inputs)).toEqual(
      expect.arrayContaining([
        'image',
        'digest',
        'to',
        'environment',
        'mode',
        'require-environment',
        'promotion-identity',
        'certificate-identity',
        'public-key',
        'attestation-type'
      ])
    )
    expect(call.inputs.image.required).toBe(true)
    expect(call.inputs.environment.required).toBe(true)
    expect(Object.keys(call.outputs)).toEqual(['digest', 'image', 'promoted'])
    expect(Object.keys(call.secrets)).toEqual(['registry-password'])
  })

  it("runs in the caller's GitHub Environment, with least permissions, and passes only inputs the action has", async () => {
    const { raw } = await parse('.github/workflows/promote.yml')
    expect(raw['permissions']).toEqual({})
    const job = raw['jobs']['promote']
    expect(job.environment).toBe('${{ inputs.environment }}')
    expect(job.permissions).toEqual({ contents: 'read', packages: 'write', 'id-token': 'write', attestations: 'read' })
    const step = job.steps.find((s: { uses?: string }) => s.uses?.startsWith('acme/oci-promote@'))
    const known = await actionInputs()
    expect(Object.keys(step.with).filter((name) => !known.includes(name))).toEqual([])
    // Every input of the workflow reaches the action or the login step: none is declared and then dropped.
    const used = JSON.stringify(job.steps)
    expect(Object.keys(raw['on']['workflow_call'].inputs).filter((name) => !used.includes(`inputs.${name}`))).toEqual([])
  })
})

describe('the sharded release example (examples/release-matrix.yml)', () => {
  it('stages in matrix shards, then one promote job over the whole release moves the tags', async () => {
    const { raw } = await parse('examples/release-matrix.yml')
    const known = await actionInputs()
    const step = (job: string) => raw['jobs'][job].steps.find((s: { uses?: string }) => s.uses?.startsWith('acme/oci-promote@'))
    const stage = step('stage')
    const promote = step('promote')
    for (const s of [stage, promote]) expect(Object.keys(s.with).filter((name) => !known.includes(name))).toEqual([])
    const shards: number[] = raw['jobs']['stage'].strategy.matrix.shard
    // GitHub's parser reads "${{ matrix.shard }}/4" as the format() it is.
    expect(stage.with).toMatchObject({ mode: 'stage', shard: `\${{ format('{0}/${shards.length}', matrix.shard) }}` })
    expect(shards).toEqual(shards.map((_, i) => i + 1))
    expect(raw['jobs']['promote'].needs).toBe('stage')
    expect(promote.with.mode ?? 'promote').toBe('promote')
    expect(promote.with.shard).toBeUndefined()
    expect(promote.with.release).toBe(stage.with.release)
  })
})

describe('the release rollback example (examples/release-rollback.yml)', () => {
  it('rolls the whole release back in one step, recording it under a policy that trusts its own records', async () => {
    const { raw } = await parse('examples/release-rollback.yml')
    const job = raw['jobs']['rollback']
    const step = job.steps.find((s: { uses?: string }) => s.uses?.startsWith('acme/oci-promote@'))
    const known = await actionInputs()
    expect(Object.keys(step.with).filter((name) => !known.includes(name))).toEqual([])
    expect(step.with).toMatchObject({ mode: 'rollback', release: 'release.yaml', environment: 'production', 'attest-promotion': 'true' })
    expect(step.with.shard).toBeUndefined()
    expect(job.permissions['id-token']).toBe('write')
    // The rollback's own record counts only if the policy trusts the workflow that signs it.
    expect(new RegExp(step.with['promotion-identity-regexp']).test('https://github.com/acme/app/.github/workflows/release-rollback.yml@refs/heads/main')).toBe(
      true
    )
  })
})
