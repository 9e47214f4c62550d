import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);
var t="https://api.github.com";export{t as a};
