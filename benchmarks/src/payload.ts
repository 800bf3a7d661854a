/** A ComexStat-like row, as the gateway caches them. */
export interface PayloadRow {
  coAno: string;
  coMes: string;
  coNcm: string;
  coPais: string;
  metricFOB: string;
  metricKG: string;
}

/** A ComexStat-like response (about 400 bytes as JSON), the value every scenario caches. */
export interface Payload {
  ano: number;
  mes: number;
  ncm: string;
  pais: string;
  rows: PayloadRow[];
}

/** The cache key of item `i`, shaped like the gateway's keys. */
export function payloadKey(i: number): string {
  return `comexstat:exp:2024:${(i % 12) + 1}:${String(10000000 + i)}:160`;
}

/** The value of item `i`: deterministic, distinct per `i`. */
export function payload(i: number): Payload {
  const ncm = String(10000000 + i);
  const mes = (i % 12) + 1;
  const row = (k: number): PayloadRow => ({
    coAno: '2024',
    coMes: String(mes).padStart(2, '0'),
    coNcm: ncm,
    coPais: '160',
    metricFOB: String(1000 + ((i * 7919 + k) % 100000)),
    metricKG: String(500 + ((i * 104729 + k) % 100000)),
  });
  return { ano: 2024, mes, ncm, pais: '160', rows: [row(0), row(1), row(2)] };
}
