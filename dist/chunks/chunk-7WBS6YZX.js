import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);
import{createHash as t}from"node:crypto";function p(e){return`sha256:${t("sha256").update(e.export({type:"spki",format:"der"})).digest("hex")}`}export{p as a};
