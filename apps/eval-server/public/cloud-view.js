// The 3-D view of a segmented point cloud: three.js Points coloured by class, slowly
// turning; drag to rotate. preserveDrawingBuffer lets tests read the pixels back.
// three.js comes from this server's node_modules (/vendor/three/), never a CDN.
import * as THREE from '/vendor/three/three.module.js';
import { PALETTE } from './charts.js';

export function createCloudView(canvas) {
  let renderer;
  try {
    renderer = new THREE.WebGLRenderer({ canvas, antialias: false, preserveDrawingBuffer: true });
  } catch (err) {
    return { error: `WebGL is not available: ${err.message}` };
  }
  renderer.setPixelRatio(window.devicePixelRatio || 1);
  renderer.setSize(canvas.clientWidth || canvas.width, canvas.clientHeight || canvas.height, false);
  renderer.setClearColor(0x11151c);
  const scene = new THREE.Scene();
  const camera = new THREE.PerspectiveCamera(45, (canvas.clientWidth || canvas.width) / (canvas.clientHeight || canvas.height), 0.01, 1000);
  const group = new THREE.Group();
  scene.add(group);
  let points;
  let data;
  let angle = 0;
  let dragging = false;
  let lastX = 0;
  canvas.addEventListener('pointerdown', (e) => {
    dragging = true;
    lastX = e.clientX;
  });
  window.addEventListener('pointerup', () => {
    dragging = false;
  });
  canvas.addEventListener('pointermove', (e) => {
    if (!dragging) return;
    angle += (e.clientX - lastX) * 0.01;
    lastX = e.clientX;
  });

  function colours(byLabels) {
    const ids = byLabels ? data.labels : data.predictions;
    const out = new Float32Array(ids.length * 3);
    const c = new THREE.Color();
    ids.forEach((id, i) => {
      c.set(id >= 0 ? PALETTE[id % PALETTE.length] : '#555555');
      out.set([c.r, c.g, c.b], 3 * i);
    });
    return out;
  }

  function show(cloud, byLabels = false) {
    data = cloud;
    if (points) {
      group.remove(points);
      points.geometry.dispose();
    }
    const positions = new Float32Array(cloud.positions);
    const geometry = new THREE.BufferGeometry();
    geometry.setAttribute('position', new THREE.BufferAttribute(positions, 3));
    geometry.setAttribute('color', new THREE.BufferAttribute(colours(byLabels), 3));
    geometry.computeBoundingSphere();
    const { center, radius } = geometry.boundingSphere;
    geometry.translate(-center.x, -center.y, -center.z);
    points = new THREE.Points(geometry, new THREE.PointsMaterial({ size: Math.max(radius / (cloud.labels.length < 2000 ? 30 : 55), 0.01), vertexColors: true }));
    // Scenes are z-up (as point-cloud data sets are); three.js is y-up.
    points.rotation.x = -Math.PI / 2;
    group.add(points);
    camera.position.set(0, radius * 1.1, radius * 2.3);
    camera.lookAt(0, 0, 0);
    render();
  }

  function recolour(byLabels) {
    if (!points) return;
    points.geometry.setAttribute('color', new THREE.BufferAttribute(colours(byLabels), 3));
    render();
  }

  function render() {
    group.rotation.y = angle;
    renderer.render(scene, camera);
  }

  let running = true;
  function loop() {
    if (!running) return;
    if (!dragging) angle += 0.004;
    render();
    requestAnimationFrame(loop);
  }
  requestAnimationFrame(loop);
  return {
    show,
    recolour,
    dispose() {
      running = false;
      renderer.dispose();
    },
  };
}
