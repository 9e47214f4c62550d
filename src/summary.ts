import { shortDigest } from './oci/digest.js'
import { DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_INDEX, OCI_MANIFEST } from './oci/media-types.js'
import { usageLine } from './oci/registry.js'
import { untrusted } from './untrusted.js'
import type { DestinationResult, PromotionResult } from './promote.js'
import type { PruneResult } from './prune.js'
import type { RunOutcome } from './run.js'

/** What the summary shows: a run's results (one per image), and whether it was a release. */
export type SummaryInput = Pick<RunOutcome, 'results' | 'release' | 'signaturesChecked' | 'usage' | 'pruned' | 'rolledBack'>

// GitHub refuses a step summary over 1 MiB; the release table stops well before, and says what it left out.
const MAX_TABLE_BYTES = 900 * 1024

const MEDIA_TYPE_NAMES: Record<string, string> = {
  [OCI_INDEX]: 'OCI image index',
  [OCI_MANIFEST]: 'OCI image manifest',
  [DOCKER_MANIFEST_LIST]: 'Docker manifest list',
  [DOCKER_MANIFEST]: 'Docker image manifest'
}

const HEADINGS: Record<PromotionResult['mode'], string> = {
  promote: 'Promoted',
  plan: 'Plan (nothing written)',
  verify: 'Verified (nothing written)',
  stage: 'Staged (content and signatures copied, no tag moved)'
}

/** A rollback promotes earlier digests: its results say promote, its heading says what the run did. */
function heading(outcome: SummaryInput, mode: PromotionResult['mode']): string {
  return outcome.rolledBack ? 'Rolled back' : HEADINGS[mode]
}

/**
 * Any text in the summary, which is Markdown with HTML: one line (escaped by
 * `untrusted`), and no character that could open a table cell, emphasis, a
 * link, an HTML tag or an entity.
 */
function cell(text: string): string {
  return untrusted(text).replace(/[|\\`*_<>[\]&#!~]/g, (c) => `&#${c.charCodeAt(0)};`)
}

function code(text: string): string {
  return `<code>${cell(text)}</code>`
}

function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`
  const units = ['KiB', 'MiB', 'GiB', 'TiB']
  let value = bytes
  let unit = -1
  do {
    value /= 1024
    unit++
  } while (value >= 1024 && unit < units.length - 1)
  return `${value.toFixed(1)} ${units[unit]}`
}

function count(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`
}

function row(d: DestinationResult): string {
  const previous = d.previousDigest === null ? '—' : code(shortDigest(d.previousDigest))
  return `| ${code(d.reference)} | ${d.status} | ${code(shortDigest(d.digest))} | ${previous} | ${d.copy} |`
}

/** The job summary as Markdown; pure, so tests read it without a runner. */
export function renderSummary(outcome: SummaryInput): string {
  if (outcome.pruned) return pruneSummary(outcome.pruned)
  return outcome.release ? releaseSummary(outcome) : imageSummary(outcome.results[0]!, outcome)
}

/** mode: prune: what went, what stayed and why, the bytes freed as far as known. */
function pruneSummary(pruned: PruneResult): string {
  const gone = pruned.digests.filter((d) => d.status !== 'kept')
  const kept = pruned.digests.filter((d) => d.status === 'kept')
  const verb = pruned.dryRun ? 'would be deleted (dry-run: nothing was)' : 'deleted'
  const bytes = gone.reduce((n, d) => n + (d.bytes ?? 0), 0)
  const reasons = new Map<string, number>()
  for (const d of kept) {
    const rule = d.reason.replace(/^tag \S+ /, 'tag ').replace(/ of \S+ \(/, ' (')
    reasons.set(rule, (reasons.get(rule) ?? 0) + 1)
  }
  const lines = [
    `### oci-promote: Prune ${code(pruned.repository)}`,
    '',
    `**${count(gone.length, 'image')} ${verb}**, with ${count(pruned.attachmentsDeleted, 'attached manifest')} (signatures, attestations, referrer indexes, platforms); at most ${formatBytes(bytes)} freed (layers other images share stay).`,
    '',
    `**${count(kept.length, 'image')} kept:**`,
    '',
    ...[...reasons].map(([reason, n]) => `- ${n} × ${cell(reason)}`),
    ''
  ]
  if (gone.length > 0) {
    lines.push('| Digest | Tags | Created | Status |', '|---|---|---|---|')
    for (const d of gone.slice(0, 2000))
      lines.push(`| ${code(shortDigest(d.digest))} | ${d.tags.map(code).join(' ') || '—'} | ${d.created ? cell(d.created) : '—'} | ${d.status} |`)
    if (gone.length > 2000) lines.push('', `… and ${gone.length - 2000} more, listed in the pruned output.`)
    lines.push('')
  }
  return `${lines.join('\n')}\n`
}

function imageSummary(result: PromotionResult, context: SummaryInput): string {
  const lines: string[] = []
  lines.push(`### oci-promote: ${heading(context, result.mode)}`, '')
  if (result.digest) {
    const kind = MEDIA_TYPE_NAMES[result.mediaType] ?? cell(result.mediaType)
    const platforms = result.platforms.length ? `, ${result.platforms.length} platforms: ${result.platforms.map(cell).join(', ')}` : ''
    lines.push(`**Source** ${code(result.source)} is ${code(result.digest)} (${kind}${platforms}).`, '')
    lines.push(`**Pinned reference** for deploy jobs: ${code(result.image)}`, '')
  } else {
    lines.push(
      "**The destinations went back to different digests:** no single digest was deployed, so the `digest` and `image` outputs are empty; each destination's is in the table and the `promoted` output.",
      ''
    )
  }
  if (!context.signaturesChecked) {
    lines.push('**Signatures:** not verified: verify-signature is false for this run.', '')
  } else {
    lines.push(`**Signatures:** verified before promoting; ${count(result.verified.length, 'signature')} satisfied the policy.`, '')
    lines.push('| Format | Subject | Signed by | Issuer | Predicate type | Log index |', '|---|---|---|---|---|---|')
    for (const v of result.verified) {
      const signer = v.identity ?? v.keyId ?? 'unknown'
      lines.push(
        `| ${v.format} | ${code(shortDigest(v.subject))} | ${code(signer)} | ${v.issuer ? code(v.issuer) : '—'} | ${v.predicateType ? code(v.predicateType) : '—'} | ${v.logIndex === undefined ? '—' : cell(v.logIndex)} |`
      )
    }
    lines.push('')
    const claims = [...new Set(result.verified.flatMap((v) => Object.entries(v.claims ?? {}).map(([name, value]) => `${code(name)} = ${code(value)}`)))]
    if (claims.length) lines.push(`**Certificate claims checked:** ${claims.join(', ')}.`, '')
  }
  if (result.gate) {
    const { predicate, signature } = result.gate
    const by = predicate.workflow.actor ? ` by ${cell(predicate.workflow.actor)}` : ''
    const run =
      predicate.workflow.repository && predicate.workflow.runId ? ` in run ${cell(predicate.workflow.repository)}#${cell(predicate.workflow.runId)}` : ''
    lines.push(
      `**Chain:** built and signed as above → promoted to ${code(predicate.environment)}${by}${run}${predicate.promotedAt ? ` at ${cell(predicate.promotedAt)}` : ''}, record signed by ${code(signature.identity ?? signature.keyId ?? 'unknown')} → now this promotion.`,
      ''
    )
  }
  if (result.records.length > 0) {
    lines.push(`**Promotion record:** signed and attached at ${result.records.map(code).join(', ')}.`, '')
  }
  if (result.notes.length > 0) {
    lines.push(`**Notes** (skipped or odd; none of them counted for or against the image):`, '')
    lines.push(...result.notes.map((n) => `- ${cell(n)}`), '')
  }
  if (result.attachmentsCopied > 0) {
    lines.push(`**Carried:** ${count(result.attachmentsCopied, 'signature or attestation manifest')} copied to the other repositories.`, '')
  }
  if (result.blobsVerified) {
    lines.push(
      `**Blobs:** ${count(result.blobsVerified.count, 'blob')} downloaded and checked against their digests (${formatBytes(result.blobsVerified.bytes)}).`,
      ''
    )
  }
  if (result.destinations.length > 0) {
    lines.push('| Destination | Status | Digest | Previous digest | Copy |', '|---|---|---|---|---|')
    lines.push(...result.destinations.map(row), '')
  }
  lines.push(...copiedLines([result]))
  const moved = result.destinations.filter((d) => d.status === 'moved')
  if (result.mode === 'promote' && moved.length > 0) {
    lines.push('**Rollback:** promote the previous digest back to the tag, for example:', '')
    for (const d of moved) {
      const repository = d.reference.replace(/:[^:/@]+$/, '')
      const tag = d.reference.slice(repository.length + 1)
      lines.push(`- image ${code(`${repository}@${d.previousDigest}`)}, to ${code(tag)}`)
    }
    lines.push('')
  }
  lines.push(...pullLines(context))
  return `${lines.join('\n')}\n`
}

function copiedLines(results: readonly PromotionResult[]): string[] {
  const c = { blobsUploaded: 0, blobsMounted: 0, blobsPresent: 0, bytesUploaded: 0, manifestsWritten: 0 }
  for (const r of results) for (const key of Object.keys(c) as (keyof typeof c)[]) c[key] += r.copied[key]
  const wrote = results.some((r) => r.mode === 'promote' || r.mode === 'stage')
  if (!wrote || c.blobsUploaded + c.blobsMounted + c.blobsPresent + c.manifestsWritten === 0) return []
  return [
    `**Copied:** ${count(c.blobsUploaded, 'blob')} uploaded (${formatBytes(c.bytesUploaded)}), ${c.blobsMounted} mounted, ${c.blobsPresent} already present; ${count(c.manifestsWritten, 'manifest')} written.`,
    ''
  ]
}

function pullLines(context: SummaryInput): string[] {
  const usage = context.usage ?? []
  // Docker Hub counts every manifest GET against its pull limit; lookups of what may not exist are HEADs.
  return usage.length > 0 ? [`**Registry pulls:** ${usage.map((u) => cell(usageLine(u))).join('; ')}.`, ''] : []
}

/**
 * A release: one table for every destination of every image, cut short (and saying so) before the runner's step
 * summary limit, however many images; the promoted output always lists them all.
 */
function releaseSummary(outcome: SummaryInput): string {
  const { results, release } = outcome
  const mode = results[0]?.mode ?? 'promote'
  const shard = release?.shard ? `; shard ${release.shard.index}/${release.shard.count} holds ${count(results.length, 'image')}` : ''
  const lines = [`### oci-promote: Release ${heading(outcome, mode)}`, '', `**Release** of ${count(release?.size ?? results.length, 'image')}${shard}.`, '']
  const verified = results.reduce((n, r) => n + r.verified.length, 0)
  lines.push(
    outcome.signaturesChecked
      ? `**Signatures:** verified before anything was written, for every image; ${count(verified, 'signature')} satisfied the policy (listed in the verified output).`
      : '**Signatures:** not verified: verify-signature is false for this run.',
    ''
  )
  const records = results.flatMap((r) => r.records)
  if (records.length > 0) lines.push(`**Promotion records:** ${count(records.length, 'record')} signed and attached, one per image and repository.`, '')
  const rows = results.flatMap((r) => r.destinations.map((d) => `| ${code(r.source)} ${row(d).slice(1)}`))
  lines.push('| Image | Destination | Status | Digest | Previous digest | Copy |', '|---|---|---|---|---|---|')
  let size = 0
  let shown = 0
  for (const line of rows) {
    size += Buffer.byteLength(line) + 1
    if (size > MAX_TABLE_BYTES) break
    lines.push(line)
    shown++
  }
  lines.push('')
  if (shown < rows.length) {
    lines.push(`**${rows.length - shown} more destinations** are not shown: a step summary holds at most 1 MiB. The promoted output lists every one.`, '')
  }
  const notes = results.flatMap((r) => r.notes)
  if (notes.length > 0) {
    lines.push(`**Notes** (skipped or odd; none of them counted for or against an image):`, '')
    lines.push(...notes.slice(0, 50).map((n) => `- ${cell(n)}`), ...(notes.length > 50 ? [`- … and ${notes.length - 50} more in the log`] : []), '')
  }
  lines.push(...copiedLines(results), ...pullLines(outcome))
  return `${lines.join('\n')}\n`
}
