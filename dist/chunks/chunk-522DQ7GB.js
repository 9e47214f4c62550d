import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);
import{c as r}from"./chunk-O5DVVPDB.js";var t=r((s,e)=>{e.exports=()=>{throw new Error("HTTP/2 is not bundled: the registry client sets allowH2: false")}});export{t as a};
