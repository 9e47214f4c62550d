// Runs the bundled action the way the GitHub runner does: `node dist/index.js`
// with INPUT_* variables and GITHUB_OUTPUT / GITHUB_STEP_SUMMARY files.
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const ACTION_ENTRY = fileURLToPath(new URL('../../dist/index.js', import.meta.url))

export interface ActionRun {
  readonly exitCode: number
  readonly stdout: string
  readonly stderr: string
  readonly outputs: Record<string, string>
  readonly summary: string
}

/** Parses the runner's `name<<DELIMITER … DELIMITER` and `name=value` output file format. */
export function parseOutputFile(text: string): Record<string, string> {
  const outputs: Record<string, string> = {}
  const lines = text.split('\n')
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!
    const heredoc = /^([^=<]+)<<(.+)$/.exec(line)
    if (heredoc) {
      const end = lines.indexOf(heredoc[2]!, i + 1)
      outputs[heredoc[1]!] = lines.slice(i + 1, end).join('\n')
      i = end
    } else if (line.includes('=')) {
      outputs[line.slice(0, line.indexOf('='))] = line.slice(line.indexOf('=') + 1)
    }
  }
  return outputs
}

export interface ProcessRun {
  readonly exitCode: number
  readonly stdout: string
  readonly stderr: string
  /** Wall time from spawn to exit. */
  readonly ms: number
  /** Peak resident set size (VmHWM), sampled from /proc while it runs; 0 where /proc is not available. */
  readonly peakRssKiB: number
}

function readPeakRss(pid: number): number {
  try {
    const match = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return match ? Number(match[1]) : 0
  } catch {
    return 0
  }
}

/**
 * CPU time (user and system) from /proc/<pid>/stat, in ms (clock ticks of 10 ms): a process's own (utime, stime),
 * or that of its children that have exited and been waited for (cutime, cstime); 0 where /proc is not available.
 */
export function cpuMs(pid: number | 'self', whose: 'own' | 'exited children' = 'own'): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')
    const at = whose === 'own' ? 11 : 13
    return (Number(fields[at]) + Number(fields[at + 1])) * 10
  } catch {
    return 0
  }
}

/** The CPU this process's exited children used: across a stretch of runs, what those runs' processes spent. */
export const exitedChildrenCpuMs = (): number => cpuMs('self', 'exited children')

/** Runs a command to completion, timing it and sampling its peak memory. */
export async function runProcess(command: string, args: readonly string[], env: Record<string, string | undefined> = process.env): Promise<ProcessRun> {
  return new Promise((resolve, reject) => {
    const started = performance.now()
    const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    let peakRssKiB = 0
    const sample = setInterval(() => {
      if (child.pid) peakRssKiB = Math.max(peakRssKiB, readPeakRss(child.pid))
    }, 10)
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    child.on('error', (error) => {
      clearInterval(sample)
      reject(error)
    })
    child.on('exit', () => {
      if (child.pid) peakRssKiB = Math.max(peakRssKiB, readPeakRss(child.pid))
    })
    child.on('close', (code) => {
      clearInterval(sample)
      resolve({ exitCode: code ?? 1, stdout, stderr, ms: performance.now() - started, peakRssKiB })
    })
  })
}

export async function runAction(inputs: Record<string, string>, env: Record<string, string> = {}): Promise<ActionRun & ProcessRun> {
  const dir = await mkdtemp(join(tmpdir(), 'oci-promote-run-'))
  const outputFile = join(dir, 'output')
  const summaryFile = join(dir, 'summary')
  await writeFile(outputFile, '')
  await writeFile(summaryFile, '')
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('INPUT_') && !k.startsWith('GITHUB_')))
  const childEnv: Record<string, string | undefined> = {
    ...inherited,
    GITHUB_OUTPUT: outputFile,
    GITHUB_STEP_SUMMARY: summaryFile,
    RUNNER_TEMP: dir,
    ...env
  }
  for (const [name, value] of Object.entries(inputs)) childEnv[`INPUT_${name.toUpperCase()}`] = value
  try {
    const run = await runProcess(process.execPath, [ACTION_ENTRY], childEnv)
    return {
      ...run,
      outputs: parseOutputFile(await readFile(outputFile, 'utf8')),
      summary: await readFile(summaryFile, 'utf8')
    }
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}
