// manager.max_connections / suspend_time_on_unacceptable for the engine: a session beyond the
// limit is held at negotiation — the MTA's OPTNEG stays unanswered and no child is connected —
// until the gate (src/runtime/limits.ts ConnectionGate) admits it. From the MTA's side this is
// what the original's paused accept() looks like: a connection that does not answer yet.
// The Leader is not changed: its negotiate and close are wrapped on the instance.
import type { ConnectionGate } from "../runtime/limits.ts";
import type { MilterHandler, NegotiateResult, SessionContext, SessionEnd } from "../milter-side/index.ts";
import type { OptnegCommand } from "../milter/index.ts";

const CLOSE: NegotiateResult = { type: "close" };

export function gated<H extends MilterHandler>(handler: H, gate: ConnectionGate): H {
  const negotiate = handler.negotiate?.bind(handler);
  const close = handler.close?.bind(handler);
  let inside = false;
  let cancel: (() => void) | undefined;
  handler.negotiate = (offer: OptnegCommand, ctx: SessionContext) => {
    const go = () => {
      inside = true;
      return negotiate ? negotiate(offer, ctx) : undefined;
    };
    return new Promise<NegotiateResult>((resolve, reject) => {
      const t = gate.enter(() => {
        ctx.signal.removeEventListener("abort", gone);
        Promise.resolve(go()).then(resolve, reject);
      });
      cancel = t.cancel;
      function gone(): void {
        t.cancel();
        resolve(CLOSE); // the MTA went away while waiting
      }
      if (t.admitted) return Promise.resolve(go()).then(resolve, reject);
      if (ctx.signal.aborted) return gone();
      ctx.signal.addEventListener("abort", gone, { once: true });
    });
  };
  handler.close = (ctx: SessionContext, end: SessionEnd) => {
    cancel?.();
    if (inside) {
      inside = false;
      gate.leave();
    }
    return close?.(ctx, end);
  };
  return handler;
}
