// Trains a two-layer MLP on a seeded synthetic regression task through @kiln/tensor and
// prints the backend it chose and the loss as it falls.
import { createRng, describeBackendChoice, initBackend, tf } from '@kiln/tensor';

const choice = await initBackend();
console.log(describeBackendChoice(choice));

const rng = createRng(7);
const samples = 512;
const x = rng.normal([samples, 8]);
const trueW = rng.normal([8, 1]);
const y = tf.tidy(() => tf.sin(tf.matMul(x, trueW)).add(tf.mul(0.05, rng.normal([samples, 1]))));

const w1 = tf.variable(rng.normal([8, 32], 0, Math.sqrt(2 / 8)));
const b1 = tf.variable(tf.zeros([32]));
const w2 = tf.variable(rng.normal([32, 1], 0, Math.sqrt(1 / 32)));
const b2 = tf.variable(tf.zeros([1]));
const predict = (input) => tf.tidy(() => tf.add(tf.matMul(tf.relu(tf.add(tf.matMul(input, w1), b1)), w2), b2));
const optimizer = tf.train.adam(0.01);

for (let step = 0; step <= 300; step++) {
  const loss = optimizer.minimize(() => tf.losses.meanSquaredError(y, predict(x)), true);
  if (step % 50 === 0) console.log(`step ${String(step).padStart(3)}  loss ${(await loss.data())[0].toFixed(5)}`);
  loss.dispose();
}
