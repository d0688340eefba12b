import { loadModel } from './dist/src/embed/model-card.js';
import { createRuntime } from './dist/src/embed/backend/index.js';
const m = loadModel('models/neardup-vit-s8');
const B = 32, S = 64;
const px = new Float32Array(B*3*S*S); let s = 1; for (let i=0;i<px.length;i++){ s = (s*1103515245+12345)%2147483648; px[i] = (s/2147483648-0.5)*4; }
const o = await createRuntime('onnx', m, {threads: 1});
const t = await createRuntime('tfjs', m, {threads: 1});
console.log(o.name, t.name);
const a = await o.embed(px, B); const b = await t.embed(px, B);
let minCos = 1; for (let i=0;i<B;i++){ let d=0; for (let k=0;k<128;k++) d+=a[i*128+k]*b[i*128+k]; minCos=Math.min(minCos,d);} console.log('min cos', minCos, 'maxabs', Math.max(...a.map((v,i)=>Math.abs(v-b[i]))));
for (const r of [o,t]) { await r.embed(px,B); const n = r===o?10:4; const t0=performance.now(); for(let i=0;i<n;i++) await r.embed(px,B); console.log(r.name, (n*B/((performance.now()-t0)/1000)).toFixed(1),'img/s'); }
await o.dispose(); await t.dispose();
