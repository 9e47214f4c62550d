// The one source of the version: package.json. The user agent and the CLI's --version read it from here.
import packageJson from '../package.json' with { type: 'json' }

export const VERSION: string = packageJson.version
export const USER_AGENT = `oci-promote/${VERSION}`
