// Authenticated / Unauthenticated: apply the milter only to mail whose sender did (or did not)
// authenticate with SMTP AUTH, decided at MAIL FROM from the `{auth_type}` / `{auth_authen}` macros.
// Postfix sends them when `milter_mail_macros` lists them (its default does).
import type { ConditionDefinition } from "./api.ts";

export function authenticatedCondition(): ConditionDefinition {
  return {
    name: "Authenticated",
    description: "Apply the milter only to mail from senders authenticated with SMTP AUTH ({auth_type} or {auth_authen} set at MAIL)",
    envelopeFrom: (ctx) => !ctx.authenticated,
  };
}

export function unauthenticatedCondition(): ConditionDefinition {
  return {
    name: "Unauthenticated",
    description: "Apply the milter only to mail from senders that did not authenticate with SMTP AUTH",
    envelopeFrom: (ctx) => ctx.authenticated,
  };
}
