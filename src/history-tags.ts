// History tags (the history-tags input): before a tag moves, a tag naming where it pointed, `<tag>--<first 16 hex of
// the digest>`, never moved afterwards. Written by promote.ts, read by prune.ts to find environments and their past.

const DIGEST_CHARACTERS = 16
/** Tags are at most 128 characters (distribution-spec): a longer environment tag writes its history under its start. */
const TAG_ROOM = 128 - '--'.length - DIGEST_CHARACTERS
const HISTORY_TAG = new RegExp(`^(.{1,${TAG_ROOM}})--([a-f0-9]{${DIGEST_CHARACTERS}})$`)

/** `prod` that held sha256:0123… → `prod--0123456789abcdef`: unique per digest, so it never needs to move. */
export function historyTag(tag: string, digest: string): string {
  return `${tag.slice(0, TAG_ROOM)}--${digest.slice('sha256:'.length, 'sha256:'.length + DIGEST_CHARACTERS)}`
}

/** What a tag shaped like a history tag says: the start of the tag it keeps history for, and the digest's prefix. */
export function readHistoryTag(name: string): { readonly tagStart: string; readonly digestPrefix: string } | undefined {
  const match = HISTORY_TAG.exec(name)
  return match ? { tagStart: match[1]!, digestPrefix: `sha256:${match[2]!}` } : undefined
}

/** Whether a history tag whose tag part is `tagStart` is one that `tag` writes. */
export function writesHistoryAs(tag: string, tagStart: string): boolean {
  return tag.slice(0, TAG_ROOM) === tagStart
}
