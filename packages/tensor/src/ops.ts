/**
 * The custom-op registry. An op is declared once: a differentiable reference composition
 * of tf ops that runs on every backend, optional fast kernels per backend, and optionally
 * a gradient. When the active backend has a kernel it runs, wrapped in a custom gradient
 * (the declared one, or the vector-Jacobian product of the reference); otherwise the
 * reference runs and tfjs differentiates it. Either way gradients flow.
 */
import { tf } from './tf.js';
import { vjp } from './vjp.js';

type Tensor = tf.Tensor;

/** A tfjs kernel: receives the inputs as TensorInfos on the backend and returns outputs. */
export type OpKernel = tf.KernelFunc;

/** Non-tensor arguments of an op; they reach kernels as tfjs attrs. */
export type OpAttrs = Record<string, number | boolean | string | number[] | undefined>;

export interface OpGradientArgs<I extends string, A extends OpAttrs> {
  inputs: Partial<Record<I, Tensor>>;
  outputs: Tensor[];
  /** One upstream gradient per output (zeros for outputs that were not used). */
  dy: Tensor[];
  attrs: A;
}

export interface OpSpec<I extends string, A extends OpAttrs, O extends Tensor | Tensor[]> {
  /** Unique name; the tfjs kernel is registered as `Kiln<Name>`. */
  name: string;
  /** Tensor inputs in a fixed order; inputs the caller omits are simply absent. */
  inputs: readonly I[];
  /** Inputs that carry no gradient (indices, masks); they get zeros. */
  nonDifferentiable?: readonly I[];
  /** Checks arguments before any backend runs; throw errors that name the argument. */
  validate?: (inputs: Partial<Record<I, Tensor>>, attrs: A) => void;
  /** The straightforward composition of tf ops that defines the op. */
  reference: (inputs: Partial<Record<I, Tensor>>, attrs: A) => O;
  /** Kernels by backend name (`cpu`, `kiln-native`, `webgpu`, ...). */
  kernels?: Record<string, OpKernel>;
  /** Gradient for the kernel path; defaults to the reference's vector-Jacobian product. */
  gradient?: (args: OpGradientArgs<I, A>) => Partial<Record<I, Tensor>>;
}

export interface Op<I extends string, A extends OpAttrs, O extends Tensor | Tensor[]> {
  (inputs: Partial<Record<I, Tensor>>, attrs?: A): O;
  readonly opName: string;
  readonly kernelName: string;
  /** Runs the reference composition whatever the backend (for tests and fallbacks). */
  reference(inputs: Partial<Record<I, Tensor>>, attrs?: A): O;
  /** Whether `backend` (default: the active one) runs a kernel rather than the reference. */
  hasKernel(backend?: string): boolean;
  /** Adds or replaces the kernel for one backend, e.g. once a native addon has loaded. */
  registerKernel(backend: string, kernel: OpKernel): void;
}

const definedOps = new Map<string, Op<string, OpAttrs, Tensor | Tensor[]>>();

function kernelNameOf(name: string): string {
  return `Kiln${name[0]!.toUpperCase()}${name.slice(1)}`;
}

function asList(value: Tensor | Tensor[]): Tensor[] {
  return Array.isArray(value) ? value : [value];
}

/** Declares a custom op. Declaring the same name twice is an error. */
export function defineOp<I extends string, A extends OpAttrs = OpAttrs, O extends Tensor | Tensor[] = Tensor>(
  spec: OpSpec<I, A, O>,
): Op<I, A, O> {
  if (definedOps.has(spec.name)) throw new Error(`defineOp: an op named '${spec.name}' is already defined`);
  const kernelName = kernelNameOf(spec.name);
  const nonDifferentiable = new Set<string>(spec.nonDifferentiable ?? []);

  const present = (inputs: Partial<Record<I, Tensor>>): I[] => {
    for (const key of Object.keys(inputs)) {
      if (!spec.inputs.includes(key as I)) {
        throw new Error(`${spec.name}: unknown input '${key}'; inputs are ${spec.inputs.join(', ')}`);
      }
    }
    return spec.inputs.filter((n) => inputs[n] != null);
  };

  const referenceGradient = (args: OpGradientArgs<I, A>): Partial<Record<I, Tensor>> => {
    const names = (Object.keys(args.inputs) as I[]).filter((n) => !nonDifferentiable.has(n));
    const grads = vjp(
      (...xs) => {
        const inputs: Partial<Record<I, Tensor>> = { ...args.inputs };
        names.forEach((n, i) => {
          inputs[n] = xs[i]!;
        });
        return asList(spec.reference(inputs, args.attrs));
      },
      names.map((n) => args.inputs[n]!),
      args.dy,
    );
    const result: Partial<Record<I, Tensor>> = {};
    names.forEach((n, i) => {
      result[n] = grads[i]!;
    });
    return result;
  };
  const gradient = spec.gradient ?? referenceGradient;

  const runKernel = (inputs: Partial<Record<I, Tensor>>, attrs: A): O => {
    const names = present(inputs);
    const named: Partial<Record<I, Tensor>> = {};
    for (const n of names) named[n] = inputs[n]!;
    // The engine's own custom-gradient path (what tf.customGrad wraps), used directly
    // because tf.customGrad accepts a single output only.
    const engine = tf.engine() as unknown as { runKernelFunc(params: object): unknown };
    return engine.runKernelFunc({
      inputs: named as tf.NamedTensorMap,
      forwardFunc: (_backend: unknown, save?: (ts: Tensor[]) => void) => {
        const value = tf.engine().runKernel(kernelName, named as tf.NamedTensorMap, attrs as unknown as tf.NamedAttrMap) as O;
        save?.([...names.map((n) => named[n]!), ...asList(value)]);
        return value;
      },
      backwardsFunc: (dy: Tensor | Tensor[], saved: Tensor[]) => {
        const savedInputs: Partial<Record<I, Tensor>> = {};
        names.forEach((n, i) => {
          savedInputs[n] = saved[i]!;
        });
        const grads = gradient({ inputs: savedInputs, outputs: saved.slice(names.length), dy: asList(dy), attrs });
        const gradMap: Record<string, () => Tensor> = {};
        for (const n of names) gradMap[n] = () => grads[n] ?? tf.zerosLike(savedInputs[n]!);
        return gradMap;
      },
    }) as O;
  };

  const op = ((inputs: Partial<Record<I, Tensor>>, attrs: A = {} as A): O => {
    present(inputs);
    spec.validate?.(inputs, attrs);
    return op.hasKernel() ? runKernel(inputs, attrs) : spec.reference(inputs, attrs);
  }) as Op<I, A, O>;

  Object.defineProperties(op, {
    opName: { value: spec.name },
    kernelName: { value: kernelName },
  });
  op.reference = (inputs, attrs = {} as A) => {
    present(inputs);
    spec.validate?.(inputs, attrs);
    return spec.reference(inputs, attrs);
  };
  op.hasKernel = (backend = tf.getBackend()) => tf.getKernel(kernelName, backend) !== undefined;
  op.registerKernel = (backend, kernel) => {
    if (tf.getKernel(kernelName, backend)) tf.unregisterKernel(kernelName, backend);
    tf.registerKernel({ kernelName, backendName: backend, kernelFunc: kernel });
  };
  for (const [backend, kernel] of Object.entries(spec.kernels ?? {})) op.registerKernel(backend, kernel);
  definedOps.set(spec.name, op as unknown as Op<string, OpAttrs, Tensor | Tensor[]>);
  return op;
}

/** Every op declared so far, by name. */
export function listOps(): string[] {
  return [...definedOps.keys()];
}

/** The declared op of that name, e.g. to attach a kernel from another package. */
export function getOp(name: string): Op<string, OpAttrs, Tensor | Tensor[]> | undefined {
  return definedOps.get(name);
}
