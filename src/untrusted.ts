/**
 * Text that came from outside the workflow (a registry, a certificate, a
 * bundle, the GitHub API) is hostile: a line break in it would forge log
 * lines, and a line the runner reads as a workflow command (`::set-output::`,
 * `::add-mask::`, `##[error]`) would act on the job. Every such string passes
 * through `untrusted` before it reaches a log line, an error, an annotation,
 * an output or the job summary; `commandSafe` is the last guard on each whole
 * message as it is written.
 *
 * The runner reads `::command::` at the start of a (trimmed) line and the
 * legacy `##[command]` anywhere in a line:
 * https://github.com/actions/runner/blob/main/src/Runner.Common/ActionCommand.cs
 */

// C0 and C1 controls, DEL, line and paragraph separators, and the bidi controls that reorder what a reader sees.
// eslint-disable-next-line no-control-regex -- control characters are what it finds
const INVISIBLE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]/g
const NAMED: Readonly<Record<string, string>> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' }

/** Hostile strings are shown at most this long: enough to recognise one, never a flood. */
export const UNTRUSTED_MAX_LENGTH = 512

function escapeCharacter(c: string): string {
  const code = c.charCodeAt(0)
  return NAMED[c] ?? (code < 0x100 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`)
}

/** Breaks what the runner would read as a command, keeping it readable: `::` → `:\x3a`, `##[` → `#\x23[`. */
function breakCommands(text: string): string {
  return text.replace(/::/g, ':\\x3a').replace(/##\[/g, '#\\x23[')
}

/**
 * One line, safe to print anywhere: control and invisible characters shown as
 * escapes, workflow-command sequences broken, at most `maxLength` characters.
 */
export function untrusted(value: unknown, maxLength = UNTRUSTED_MAX_LENGTH): string {
  let text = typeof value === 'string' ? value : String(value)
  let cut = ''
  if (text.length > maxLength) {
    cut = `…(${text.length - maxLength} more characters)`
    text = text.slice(0, maxLength)
  }
  return breakCommands(text.replace(INVISIBLE, escapeCharacter)) + cut
}

/**
 * A whole message as it is written to the log: no line of it may start a
 * workflow command, whatever was interpolated into it. Our own line breaks
 * stay; each line is guarded.
 */
export function commandSafe(message: string): string {
  // The runner splits its input at \r as well as \n; we never write a bare \r.
  return message
    .replace(/\r(?!\n)/g, '\\r')
    .split(/\r?\n/)
    .map((line) => (/^\s*::/.test(line) ? line.replace('::', ':\\x3a') : line).replace(/##\[/g, '#\\x23['))
    .join('\n')
}
