import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);
import{a,b}from"./chunk-ABIVFJGW.js";import"./chunk-O5DVVPDB.js";export{a as exec,b as getExecOutput};
