import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);
var s="https://api.github.com";function i(n){for(let e of n?.split(",")??[]){let t=/^\s*<([^>]*)>\s*;(.*)$/.exec(e);if(t&&/(?:^|;)\s*rel\s*=\s*"?next"?\s*(?:;|$)/i.test(t[2]))return t[1]}}export{s as a,i as b};
