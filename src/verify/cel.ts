import { celEnv, isCelError, parse, plan, type CelInput } from '@bufbuild/cel'
import { PromoteError, errorMessage } from '../errors.js'
import { untrusted } from '../untrusted.js'
import type { VerifiedSignature } from './verifier.js'

/**
 * attestation-policy: CEL expressions (https://cel.dev, as Kubernetes admission policies and Kyverno write them)
 * evaluated against each verified attestation of the required type, with the in-toto statement's fields bound as
 * `subject`, `predicateType` and `predicate`. Evaluated by @bufbuild/cel, Buf's evaluator, run against the cel-spec
 * conformance suite; its `matches()` uses RE2 (linear time), and an expression can only walk the data it is given:
 * a statement of at most 256 KiB, the size verification keeps.
 */
export interface AttestationRule {
  /** The expression as the user wrote it. */
  readonly expression: string
  evaluate(bindings: Bindings): unknown
}

/** A verified statement's fields. JSON (objects, lists, strings, numbers, booleans, null) is what CEL takes as input. */
type Bindings = Record<'subject' | 'predicateType' | 'predicate', CelInput>

// Values shown in a failure: enough to act on, never a whole hostile document.
const MAX_SHOWN_VALUE = 200

/** Compiles every expression, or fails naming the one that does not compile. Nothing is evaluated yet. */
export function compileAttestationPolicy(expressions: readonly string[]): AttestationRule[] {
  const env = celEnv({})
  return expressions.map((expression) => {
    let program: ReturnType<typeof plan>
    try {
      program = plan(env, parse(expression))
    } catch (error) {
      // A parser recursing on a deeply nested expression runs out of stack: that too is "does not compile".
      throw new PromoteError(
        'INPUT_INVALID',
        `input "attestation-policy": ${JSON.stringify(expression)} does not compile: ${errorMessage(error).split('\n')[0]}`,
        {
          cause: error
        }
      )
    }
    return { expression, evaluate: (bindings) => program(bindings) }
  })
}

/** Why one attestation fails one rule, or undefined when the rule holds. */
function failure(rule: AttestationRule, bindings: Bindings): string | undefined {
  let result: unknown
  try {
    result = rule.evaluate(bindings)
  } catch (error) {
    return `${JSON.stringify(rule.expression)} could not be evaluated: ${untrusted(errorMessage(error), 300)}`
  }
  if (isCelError(result)) return `${JSON.stringify(rule.expression)} could not be evaluated: ${untrusted(result.message, 300)}${seen(rule, bindings)}`
  if (typeof result !== 'boolean') return `${JSON.stringify(rule.expression)} returned ${typeof result}, not a boolean`
  return result ? undefined : `${JSON.stringify(rule.expression)} is false${seen(rule, bindings)}`
}

/** The values of the fields an expression names (`predicate.a.b`), as the attestation has them: what a user can act on. */
function seen(rule: AttestationRule, bindings: Bindings): string {
  const env = celEnv({})
  // Field paths only: a segment followed by "(" is a method (all, exists, size), not a field.
  const paths = [...new Set(rule.expression.match(/\b(?:predicate|predicateType|subject)(?:\.[A-Za-z_]\w*(?!\w|\s*\())*/g) ?? [])].slice(0, 8)
  const values = paths.map((path) => {
    let value: unknown
    try {
      value = plan(env, parse(path))(bindings)
    } catch (error) {
      return `${path}: ${untrusted(errorMessage(error), 100)}`
    }
    if (isCelError(value)) return `${path} is absent`
    let text: string
    try {
      text = JSON.stringify(value, (_, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)) ?? String(value)
    } catch {
      text = String(value)
    }
    return `${path} = ${untrusted(text.length > MAX_SHOWN_VALUE ? `${text.slice(0, MAX_SHOWN_VALUE)}…` : text, MAX_SHOWN_VALUE + 8)}`
  })
  return values.length ? ` (it saw ${values.join('; ')})` : ''
}

/**
 * The attestations of `type` about the digest for which every rule holds; throws, with each attestation's first
 * failing rule and the values it saw, when there is none.
 */
export function checkAttestationPolicy(
  rules: readonly AttestationRule[],
  verified: readonly VerifiedSignature[],
  type: string,
  where: string
): VerifiedSignature[] {
  const candidates = verified.filter((v) => v.predicateType === type)
  const reasons: string[] = []
  const passed = candidates.filter((v) => {
    if (v.statement === undefined) {
      reasons.push(`${v.source}: its statement is over 256 KiB, too large to evaluate the attestation-policy on`)
      return false
    }
    const bindings = { subject: (v.statement.subject ?? null) as CelInput, predicateType: type, predicate: (v.statement.predicate ?? null) as CelInput }
    for (const rule of rules) {
      const why = failure(rule, bindings)
      if (why) {
        reasons.push(`${v.source}: ${why}`)
        return false
      }
    }
    return true
  })
  if (passed.length === 0) {
    throw new PromoteError(
      'SIGNATURE_NOT_VERIFIED',
      `${where}: no verified ${type} attestation satisfies the attestation-policy; nothing was promoted.\n${reasons.map((r) => `  - ${r}`).join('\n')}`
    )
  }
  return passed
}
