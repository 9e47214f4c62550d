import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);
import{a}from"./chunk-3IHJINZ7.js";import"./chunk-O5DVVPDB.js";export default a();
