// The manager's rule book: per stage, which children take part, what each child's answer does to
// that child and to the message, what an applicable-condition stop does, when the whole message
// is aborted, how failures become fallbacks and how end-of-message modifications reach the MTA.
// Pure: no sockets, no files, no timers. leader.ts and pipeline.ts sequence the stages and do the
// I/O; children.ts carries out the effects on a child (Child.take).
//
//   envelope.ts        connect, helo, envelope-from, envelope-recipient, data, unknown (ENVELOPE)
//   content.ts         header, end-of-header, body (CONTENT)
//   end-of-message.ts  end-of-message: answers, applying modifications, the MTA's packets
//   answers.ts         every stage: compiling answers by priority, evaluation mode, reply codes
//   failures.ts        every stage: a failed child counts as its fallback_status
// The MTA's own abort and quit are commands, not answers: every child still in the transaction
// gets ABORT (leader.ts abort), every live child QUIT.
export * from "./answers.ts";
export * from "./content.ts";
export * from "./end-of-message.ts";
export * from "./envelope.ts";
export * from "./failures.ts";
