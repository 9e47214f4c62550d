import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);
import{d as a}from"./chunk-INFHFOHC.js";import"./chunk-O5DVVPDB.js";export default a();
