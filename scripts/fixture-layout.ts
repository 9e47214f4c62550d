// Writes a small two-platform image into an OCI image layout and prints its digest:
// `node scripts/fixture-layout.ts DIR TAG`. Used by the workflow that runs the action with `uses: ./`.
import { buildMultiArch, writeLayout } from './lib/images.ts'

const [dir, tag = 'build'] = process.argv.slice(2)
if (!dir) {
  console.error('usage: node scripts/fixture-layout.ts DIR [TAG]')
  process.exit(2)
}
const image = buildMultiArch(2)
await writeLayout(dir, image, tag)
console.log(image.digest)
