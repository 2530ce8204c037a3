import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ByteBudget } from './budget';
import { Channel } from './channel';

const yieldTimes = async (n: number) => {
  for (let i = 0; i < n; i++) await new Promise<void>((r) => setImmediate(r));
};

describe('Channel under random producer and consumer speeds', () => {
  it('never exceeds capacity plus one chunk, and never loses or reorders a byte', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 1, max: 300 }), { minLength: 1, maxLength: 60 }),
        fc.integer({ min: 1, max: 1000 }),
        fc.array(fc.nat(3), { minLength: 1, maxLength: 20 }),
        fc.array(fc.nat(3), { minLength: 1, maxLength: 20 }),
        fc.boolean(),
        async (sizes, capacity, producerPauses, consumerPauses, useSend) => {
          const ch = new Channel({ capacity });
          const maxChunk = Math.max(...sizes);
          let seq = 0;
          const sent: number[] = [];
          const producer = (async () => {
            for (const [i, size] of sizes.entries()) {
              const chunk = new Uint8Array(size);
              for (let j = 0; j < size; j++) chunk[j] = seq++ & 0xff;
              sent.push(...chunk);
              if (useSend) {
                await ch.send(chunk);
              } else if (!ch.write(chunk)) {
                await new Promise<void>((r) => ch.once('drain', r));
              }
              expect(ch.buffered).toBeLessThan(capacity + maxChunk);
              await yieldTimes(producerPauses[i % producerPauses.length] as number);
            }
            ch.close();
          })();
          const received: number[] = [];
          let reads = 0;
          for await (const chunk of ch) {
            received.push(...chunk);
            await yieldTimes(consumerPauses[reads++ % consumerPauses.length] as number);
          }
          await producer;
          expect(received).toEqual(sent);
          expect(ch.metrics.peakBufferedBytes).toBeLessThan(capacity + maxChunk);
          expect(ch.metrics.bytesIn).toBe(sent.length);
          expect(ch.metrics.bytesOut).toBe(sent.length);
        },
      ),
      { numRuns: 60 },
    );
  });

  it('readBatch(): never exceeds capacity plus one chunk, counting the batch in hand, and never loses or reorders a byte', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 1, max: 300 }), { minLength: 1, maxLength: 60 }),
        fc.integer({ min: 1, max: 1000 }),
        fc.array(fc.nat(3), { minLength: 1, maxLength: 20 }),
        fc.array(fc.nat(3), { minLength: 1, maxLength: 20 }),
        fc.boolean(),
        async (sizes, capacity, producerPauses, consumerPauses, shared) => {
          const budget = shared ? new ByteBudget(capacity) : undefined;
          const ch = budget ? new Channel({ capacity: 1e9, budget }) : new Channel({ capacity });
          const maxChunk = Math.max(...sizes);
          let seq = 0;
          let produced = 0;
          let consumed = 0;
          let maxHeld = 0;
          const sent: number[] = [];
          const producer = (async () => {
            for (const [i, size] of sizes.entries()) {
              const chunk = new Uint8Array(size);
              for (let j = 0; j < size; j++) chunk[j] = seq++ & 0xff;
              sent.push(...chunk);
              const ok = ch.write(chunk);
              produced += size;
              // What the producer and the reader's batch in hand hold together.
              maxHeld = Math.max(maxHeld, produced - consumed);
              expect(ok).toBe(ch.writable);
              if (!ok) await ch.ready();
              await yieldTimes(producerPauses[i % producerPauses.length] as number);
            }
            ch.close();
          })();
          const received: number[] = [];
          let batches = 0;
          for await (const batch of ch.batches()) {
            expect(batch.length).toBeGreaterThan(0);
            for (const chunk of batch) received.push(...chunk);
            // Work through the batch slowly: it stays charged until the next step.
            await yieldTimes(consumerPauses[batches++ % consumerPauses.length] as number);
            for (const chunk of batch) consumed += chunk.byteLength;
          }
          await producer;
          expect(received).toEqual(sent);
          expect(maxHeld).toBeLessThan(capacity + maxChunk);
          expect(ch.metrics.peakBufferedBytes).toBeLessThan(capacity + maxChunk);
          expect(ch.metrics.bytesOut).toBe(sent.length);
          if (budget !== undefined) {
            expect(budget.peak).toBeLessThan(capacity + maxChunk);
            expect(budget.used).toBe(0);
          }
        },
      ),
      { numRuns: 60 },
    );
  });

  it('a shared budget bounds several channels together', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 1, max: 200 }), { minLength: 1, maxLength: 40 }),
        fc.integer({ min: 1, max: 800 }),
        fc.integer({ min: 2, max: 4 }),
        async (sizes, limit, links) => {
          const budget = new ByteBudget(limit);
          const channels = Array.from(
            { length: links },
            () => new Channel({ budget, capacity: 1e9 }),
          );
          const maxChunk = Math.max(...sizes);
          // A chain: producer -> ch0 -> relay -> ch1 -> ... -> consumer.
          const relays = channels.slice(1).map(async (next, k) => {
            for await (const chunk of channels[k] as Channel) await next.send(chunk);
            next.close();
          });
          const producer = (async () => {
            for (const size of sizes) await (channels[0] as Channel).send(new Uint8Array(size));
            (channels[0] as Channel).close();
          })();
          let total = 0;
          for await (const chunk of channels[links - 1] as Channel) {
            total += chunk.length;
            await yieldTimes(1);
          }
          await Promise.all([producer, ...relays]);
          expect(total).toBe(sizes.reduce((a, b) => a + b, 0));
          expect(budget.peak).toBeLessThanOrEqual(limit + links * maxChunk);
          expect(budget.used).toBe(0);
        },
      ),
      { numRuns: 40 },
    );
  });
});
