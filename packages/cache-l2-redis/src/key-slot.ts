const TABLE = (() => {
  const t = new Uint16Array(256);
  for (let i = 0; i < 256; i++) {
    let crc = i << 8;
    for (let j = 0; j < 8; j++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
    t[i] = crc;
  }
  return t;
})();

/** CRC16-CCITT (XMODEM) of the bytes, as Redis Cluster computes it. */
function crc16(bytes: Uint8Array): number {
  let crc = 0;
  for (const b of bytes) crc = ((crc << 8) & 0xffff) ^ (TABLE[((crc >> 8) ^ b) & 0xff] as number);
  return crc;
}

/**
 * The Redis Cluster hash slot (0-16383) of a key, honouring `{hash tags}`: when the key holds a
 * `{...}` with at least one character inside, only that part is hashed.
 */
export function keySlot(key: string): number {
  const bytes = Buffer.from(key);
  const open = bytes.indexOf(0x7b);
  if (open !== -1) {
    const close = bytes.indexOf(0x7d, open + 1);
    if (close > open + 1) return crc16(bytes.subarray(open + 1, close)) & 16383;
  }
  return crc16(bytes) & 16383;
}

/** Groups `keys` by hash slot, keeping each key's index in the input. */
export function groupBySlot(keys: readonly string[]): Map<number, { keys: string[]; indexes: number[] }> {
  const groups = new Map<number, { keys: string[]; indexes: number[] }>();
  keys.forEach((key, index) => {
    const slot = keySlot(key);
    let g = groups.get(slot);
    if (!g) groups.set(slot, (g = { keys: [], indexes: [] }));
    g.keys.push(key);
    g.indexes.push(index);
  });
  return groups;
}
