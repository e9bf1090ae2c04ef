// Runs @vladmandic/face-api (npm, MIT; the weights ship in its package) on a folder of photos
// and writes its answers as predict.py --format=csv does, for scripts/score_predictions.py:
//
//   make peers      # npm install here (TensorFlow.js on its WebAssembly backend: no native build)
//   node scripts/peers/face_api_predict.js ../shared/realfaces_dev/images /tmp/face_api.csv
//
// Each photo is given whole: face-api's SSD MobileNet v1 detector (its default, minimum
// confidence 0.5), its 68 landmarks, then its age and gender net, as its README shows.
// When it finds no face, it looks again with the photo padded in mid-gray by a quarter of
// its longer side on each side, as this project's detectors do (a face that fills its
// photo, as UTKFace's do, is otherwise missed by every detector tried); boxes are then
// in the padded photo's pixels.
// The WebAssembly binaries are read from node_modules: nothing is downloaded at run time.
const fs = require('fs');
const path = require('path');
const jpeg = require('jpeg-js');
const tf = require('@tensorflow/tfjs');
const wasm = require('@tensorflow/tfjs-backend-wasm');
const faceapi = require('@vladmandic/face-api/dist/face-api.node-wasm.js');

async function main() {
  const [folder, output] = process.argv.slice(2);
  if (!folder || !output) {
    console.error('usage: node face_api_predict.js <photos folder> <output.csv>');
    process.exit(2);
  }
  wasm.setWasmPaths(path.join(path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm')), path.sep));
  await tf.setBackend('wasm');
  await tf.ready();
  const models = path.join(path.dirname(require.resolve('@vladmandic/face-api/package.json')), 'model');
  await faceapi.nets.ssdMobilenetv1.loadFromDisk(models);
  await faceapi.nets.faceLandmark68Net.loadFromDisk(models);
  await faceapi.nets.ageGenderNet.loadFromDisk(models);
  const options = new faceapi.SsdMobilenetv1Options({ minConfidence: 0.5 });
  const names = fs.readdirSync(folder).filter((n) => /\.(jpe?g)$/i.test(n)).sort();
  if (!names.length) throw new Error(`no JPEG photos in ${folder}`);
  const rows = ['input,face,box,status,gender,gender_probability,age_years'];
  const start = Date.now();
  let found = 0;
  for (let i = 0; i < names.length; i++) {
    const file = path.join(folder, names[i]);
    const decoded = jpeg.decode(fs.readFileSync(file), { useTArray: true, formatAsRGBA: false });
    const image = tf.tensor3d(decoded.data, [decoded.height, decoded.width, 3], 'int32');
    let faces = await faceapi.detectAllFaces(image, options).withFaceLandmarks().withAgeAndGender();
    if (!faces.length) {
      const pad = Math.round(0.25 * Math.max(decoded.height, decoded.width));
      const padded = tf.pad(image, [[pad, pad], [pad, pad], [0, 0]], 128);
      faces = await faceapi.detectAllFaces(padded, options).withFaceLandmarks().withAgeAndGender();
      tf.dispose(padded);
    }
    tf.dispose(image);
    faces.sort((a, b) => b.detection.box.area - a.detection.box.area);
    if (!faces.length) rows.push(`${file},,,no_face,,,`);
    else found += 1;
    faces.forEach((face, k) => {
      const box = face.detection.box;
      const gender = face.gender === 'male' ? 'm' : 'f';
      rows.push(`${file},${k},${Math.round(box.x)} ${Math.round(box.y)} ${Math.round(box.width)} ${Math.round(box.height)},ok,`
        + `${gender},${face.genderProbability.toFixed(4)},${face.age.toFixed(2)}`);
    });
    if ((i + 1) % 200 === 0 || i + 1 === names.length) {
      console.log(`${i + 1}/${names.length} photos, a face in ${found}, ${((i + 1) / ((Date.now() - start) / 1000)).toFixed(1)} photos/s`);
    }
  }
  fs.writeFileSync(output, `${rows.join('\n')}\n`);
  console.log(`wrote ${output}`);
}

main().catch((error) => { console.error(error); process.exit(1); });
