/** A stand-in for a slow upstream API: exchange rates, with a call counter. */
export class RatesUpstream {
  /** How many times the upstream was called. */
  calls = 0;
  async fetchRate(currency: string): Promise<{ currency: string; brl: number; fetchedAt: string }> {
    this.calls++;
    await new Promise((r) => setTimeout(r, 20));
    return { currency, brl: 5 + (currency.charCodeAt(0) % 10) / 10, fetchedAt: new Date().toISOString() };
  }
}
