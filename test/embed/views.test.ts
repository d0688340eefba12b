import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import sharp from 'sharp';
import { CROPS, DOWNSTREAM_VIEWS, GRAY_VIEW, INPUT_ID, ROTATIONS, dihedralOf, isCropView, modelView, trimUniformBorder, uniformBorderBox, viewIndex, viewName } from '../../src/embed/views.js';
import { loadModel } from '../../src/embed/model-card.js';
import { FIXTURE_DOWNSTREAM } from '../helpers/corpus.js';
import { join } from 'node:path';

const N = 64;
const input = async (img: sharp.Sharp) => new Uint8Array(await sharp(await img.png().toBuffer()).removeAlpha().resize(N, N, { fit: 'fill' }).raw().toBuffer());
const meanAbsDiff = (a: Uint8Array, b: Uint8Array) => a.reduce((s, x, i) => s + Math.abs(x - b[i]!), 0) / a.length;
const photo = join(FIXTURE_DOWNSTREAM, 'test_03.png');

describe('model input views', () => {
  it('finds an added frame, in any colour, to within the pixels the resize blends', async () => {
    const { width, height } = await sharp(photo).metadata();
    const [top, bottom, left, right] = [38, 19, 38, 26];
    const [w, h] = [width! + left + right, height! + top + bottom];
    const original = await input(sharp(photo));
    for (const background of ['#000000', '#ffffff', '#3a8f22']) {
      const framed = await input(sharp(photo).extend({ top, bottom, left, right, background }));
      const box = uniformBorderBox(framed, N)!;
      const expected = { left: (left / w) * N, top: (top / h) * N, width: (width! / w) * N, height: (height! / h) * N };
      for (const k of ['left', 'top', 'width', 'height'] as const) assert.ok(Math.abs(box[k] - expected[k]) <= 2, `${background} ${k}: ${box[k]} against ${expected[k].toFixed(1)}`);
      const [after, before] = [meanAbsDiff(trimUniformBorder(framed, N), original), meanAbsDiff(framed, original)];
      assert.ok(after < before / 2, `${background}: ${after.toFixed(1)} from the photo once trimmed, ${before.toFixed(1)} framed`);
    }
  });

  it('leaves a photo without borders, and a flat image, as they are', async () => {
    const original = await input(sharp(photo));
    assert.equal(trimUniformBorder(original, N), original);
    const flat = new Uint8Array(N * N * 3).fill(128);
    assert.equal(trimUniformBorder(flat, N).length, flat.length);
  });

  it('embeds crops after the 8 dihedral views, and names them both ways', async () => {
    const original = await input(sharp(photo));
    assert.equal(DOWNSTREAM_VIEWS, 8 + CROPS.length + ROTATIONS.length + 1);
    const topLeftHalf = await input(sharp(await sharp(original, { raw: { width: N, height: N, channels: 3 } }).extract({ left: 0, top: 0, width: N / 2, height: N / 2 }).png().toBuffer()));
    const d = meanAbsDiff(modelView(original, N, 8), topLeftHalf);
    assert.ok(d < meanAbsDiff(modelView(original, N, 9), topLeftHalf) / 2 && d < meanAbsDiff(modelView(original, N, 16), topLeftHalf) / 2, `view 8 is the top-left half-side crop (${d.toFixed(1)} from it)`);
    for (let k = 0; k < DOWNSTREAM_VIEWS; k++) assert.equal(viewIndex(viewName(k)), k);
    assert.equal(viewName(1), 'rot90');
    assert.equal(dihedralOf(3), 3);
    assert.equal(dihedralOf(12), 0);
  });

  it('embeds the 80% centre crop in colour and in grayscale, both as crop views', async () => {
    const original = await input(sharp(photo));
    const colour = 8 + CROPS.findIndex((c) => c.join() === '0.1,0.1,0.8');
    const gray = 8 + CROPS.findIndex((c) => c[3] === 'gray');
    assert.ok(colour >= 8 && gray > colour, `views ${colour} and ${gray}`);
    const centre = await input(sharp(original, { raw: { width: N, height: N, channels: 3 } }).extract({ left: 6, top: 6, width: 51, height: 51 }));
    const d = meanAbsDiff(modelView(original, N, colour), centre);
    const corner = meanAbsDiff(modelView(original, N, colour - 1), centre);
    assert.ok(d < corner / 1.5 && d < meanAbsDiff(original, centre) / 1.5, `the colour view is the centre crop (${d.toFixed(1)} from sharp's, ${corner.toFixed(1)} for the 80% corner)`);
    const grayCrop = modelView(original, N, gray);
    for (let p = 0; p < grayCrop.length; p += 3) assert.ok(grayCrop[p] === grayCrop[p + 1] && grayCrop[p] === grayCrop[p + 2], 'one value in all three channels');
    assert.deepEqual(grayCrop, modelView(modelView(original, N, colour), N, GRAY_VIEW), 'the colour crop in grayscale');
    assert.equal(viewName(gray), 'gray crop 0.8 at (0.1, 0.1)');
    assert.ok(isCropView(colour) && isCropView(gray), 'both must clear the floor by CROP_MARGIN');
  });

  it('ends with rotations on an expanded canvas, as sharp rotates with its default black background', async () => {
    const original = await input(sharp(photo));
    const first = 8 + CROPS.length;
    for (let r = 0; r < ROTATIONS.length; r++) {
      const angle = ROTATIONS[r]!;
      const expected = await input(sharp(original, { raw: { width: N, height: N, channels: 3 } }).rotate(angle, { background: '#000000' }));
      const own = meanAbsDiff(modelView(original, N, first + r), expected);
      const other = meanAbsDiff(modelView(original, N, first + ((r + 1) % ROTATIONS.length)), expected);
      assert.ok(own < 12 && own < other / 3, `rotate ${angle}°: ${own.toFixed(1)} from sharp's, ${other.toFixed(1)} for the next rotation`);
      assert.equal(viewName(first + r), `rotate ${angle}°`);
      assert.equal(dihedralOf(first + r), 0);
      assert.equal(isCropView(first + r), false);
    }
    assert.equal(isCropView(8), true);
    assert.equal(isCropView(7), false);
  });

  it('ends with a grayscale view, equal to what sharp makes of the image in grayscale', async () => {
    const original = await input(sharp(photo));
    const ours = modelView(original, N, GRAY_VIEW);
    const luma = new Uint8Array(await sharp(original, { raw: { width: N, height: N, channels: 3 } }).grayscale().raw().toBuffer());
    assert.equal(luma.length * 3, ours.length);
    for (let p = 0; p < ours.length; p += 3) assert.ok(ours[p] === ours[p + 1] && ours[p] === ours[p + 2], 'one value in all three channels');
    const fromSharp = meanAbsDiff(ours.filter((_, i) => i % 3 === 0), luma);
    assert.ok(fromSharp < 3, `${fromSharp.toFixed(2)} from sharp's grayscale`);
    assert.ok(meanAbsDiff(ours, original) > 5, 'and not the colour image');
    assert.equal(viewName(GRAY_VIEW), 'grayscale');
    assert.equal(GRAY_VIEW, DOWNSTREAM_VIEWS - 1);
    assert.equal(dihedralOf(GRAY_VIEW), 0);
    assert.equal(isCropView(GRAY_VIEW), false);
  });

  it('puts the input parameters into the model id, so embeddings made another way never mix', () => {
    assert.ok(loadModel('models/neardup-vit-s8-int8').id.endsWith(`+${INPUT_ID}`));
  });
});
