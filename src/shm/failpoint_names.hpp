// The named steps of ackring's shared-memory protocols. Each is a place where
// a process may stall (be preempted, stopped, swapped out) or die, and each
// has a failpoint (src/shm/failpoint.hpp) so a test can make it do either there.
// docs/protocol.md has a row per step (dedup's in docs/dedup.md, the
// journal's in docs/journal.md); model/ackring.pml marks the same steps of
// the modelled protocols (tests/model checks that the two lists agree).
//
// X(name): the failpoint's name as tests and ACKRING_FAILPOINT use it.
#pragma once

#define ACKRING_FAILPOINT_NAMES(X)                                                                       \
  /* publish (src/queue/producer.cpp) */                                                                       \
  X("publish.after_intent")     /* producer's in-flight word stored, tail not yet claimed */             \
  X("publish.after_tail_cas")   /* seqs claimed on the tail, slot not yet read */                        \
  X("publish.after_slot_read")  /* slot word read (the commit expects it), nothing written */            \
  X("publish.mid_payload")      /* header fields and half the payload written */                         \
  X("publish.before_commit")    /* everything written, commit CAS not yet made */                        \
  X("publish.after_commit")     /* committed, in-flight word not yet cleared */                          \
  /* receive (src/queue/consumer.cpp) */                                                                       \
  X("receive.after_slot_check") /* slot n seen committed, lease word not yet taken */                    \
  X("receive.after_lease_cas")  /* lease taken, next not yet advanced */                                 \
  X("receive.mid_read")         /* header and payload read, state not yet re-checked */                  \
  X("receive.linger")           /* a short batch taken (leases held), its linger not yet begun */        \
  X("takeover.before_lease_cas") /* an expired lease read, takeover CAS not yet made */                  \
  X("takeover.after_lease_cas") /* an expired lease taken over, payload not yet read */                  \
  /* settle (src/queue/consumer.cpp) */                                                                        \
  X("ack.after_floor_check")    /* receipt checked against word and floor, settle CAS not yet made */    \
  X("ack.after_settle")         /* settled, floor not yet advanced */                                    \
  X("deadletter.after_publish") /* copy published to the DLQ, lease not yet settled */                   \
  /* floors and claims (src/queue/group.cpp) */                                                                \
  X("floor.after_scan")         /* run of settled words read, floor CAS not yet made */                  \
  X("abort.after_judge")        /* a stuck claim judged abortable, abort CAS not yet made */             \
  X("drop.after_next")          /* drop group's next pushed, words below not yet settled */              \
  X("drop.after_settle")        /* words settled dropped, floor not yet pushed */                        \
  X("refresh.after_scan")       /* floors and in-flight words read, floor word not yet CASed */          \
  /* dedup (src/dedup/dedup.cpp) */                                                                            \
  X("dedup.after_reserve")      /* key's entry reserved, not yet validated */                            \
  X("dedup.after_validate")     /* reservation validated, no seq claimed yet */                          \
  X("dedup.after_set_claimed")  /* claimed seq recorded in the entry, slot not yet written */            \
  X("dedup.before_entry_commit") /* slot committed, entry not yet committed */                          \
  /* journal (src/queue/durability.cpp) */                                                                     \
  X("journal.lead_before_flush") /* a sync publisher journals itself: records staged, not yet written */ \
  X("journal.idle_spin")         /* the sync journal thread, idle, starts spinning for the next commit */
