import { setFlagsFromString } from 'node:v8'
import { run } from './main.js'

// undici parses HTTP/1.1 with llhttp compiled to WebAssembly. After a few responses
// V8 starts optimising the parser in the background: ~70 ms of compilation that no
// promotion runs long enough to profit from, and that the process then waited for
// at exit (V8 finishes background compile jobs before the isolate is torn down),
// which made it a third of a retag's wall time. A larger tiering budget keeps the
// parser on V8's baseline wasm compiler, ample for headers; bodies only pass
// through it. Wasm flags are read when a module is compiled, before the first request.
setFlagsFromString('--wasm-tiering-budget=1000000000')

await run()
