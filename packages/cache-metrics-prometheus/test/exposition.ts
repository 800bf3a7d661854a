/** One sample line of a Prometheus text exposition. */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** A parsed text exposition: `# TYPE` per family, `# HELP` per family and every sample. */
export interface Exposition {
  types: Map<string, string>;
  help: Map<string, string>;
  samples: Sample[];
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

/** Parses the Prometheus text format (0.0.4) strictly enough for assertions. */
export function parseExposition(text: string): Exposition {
  const types = new Map<string, string>();
  const help = new Map<string, string>();
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    if (line.startsWith('# TYPE ')) {
      const [name, type] = line.slice(7).split(' ');
      types.set(name!, type!);
    } else if (line.startsWith('# HELP ')) {
      const rest = line.slice(7);
      const space = rest.indexOf(' ');
      help.set(rest.slice(0, space), rest.slice(space + 1));
    } else {
      const m = SAMPLE.exec(line);
      if (!m) throw new Error(`unparseable exposition line: ${line}`);
      const labels: Record<string, string> = {};
      for (const l of (m[2] ?? '').matchAll(LABEL)) labels[l[1]!] = l[2]!;
      samples.push({ name: m[1]!, labels, value: Number(m[3]) });
    }
  }
  return { types, help, samples };
}

/** Samples of one metric name, as `"k=v,k=v" -> value` with label keys sorted. */
export function seriesOf(exposition: Exposition, name: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const s of exposition.samples) {
    if (s.name !== name) continue;
    const key = Object.keys(s.labels)
      .sort()
      .map((k) => `${k}=${s.labels[k]}`)
      .join(',');
    out[key] = s.value;
  }
  return out;
}
