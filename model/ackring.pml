/*
 * ackring: a Promela model of the FIXED claim/commit/abort/floor/reuse
 * protocol (no mark since format 7) and of the lease/ack/expiry/receipt protocol (issue 13, "How it
 * must be checked", item 2). docs/model.md says what is modelled, how to run
 * it, what the reverted variants find, and the limits.
 *
 * Every shared-memory word is one Promela variable (or a group of variables
 * changed together inside one d_step, when the real word packs them: the
 * slot state (seq, state) and the lease word (state, generation, owner,
 * deliveries)). Every load, store and CAS of a shared word is its own
 * transition, so Spin interleaves the processes at every shared access; a
 * process may stall anywhere (Spin may simply not schedule it) or die
 * anywhere (the Killer process; the victim's `unless` escape stops it at
 * its very next step, for ever). Each place where a real process may stall
 * or die between two steps carries a step comment naming the failpoint of
 * src/shm/failpoint_names.hpp there; tests/model/check_step_names.py checks
 * that both lists are the same.
 *
 * Reverted variants (each must make the check FAIL):
 *   -DNO_INTENT       refresh ignores the producers' in-flight words (the old
 *                     protocol): failures 1 and 2 of issue 13
 *   -DNO_FLOOR_FENCE  ack does not check the group floor: failure 5
 *   -DSTALE_INTENT    a producer keeps its older in-flight word after a failed
 *                     tail CAS (the specification's text): every producer waits
 *                     for ever (docs/model.md, "Holes found")
 *   -DABORT_ANY_LAP   the abort also judges a slot at a later lap
 *   -DSETTLED_GEN_ONLY a settled lease word carries only the generation, not
 *                     its seq (format 3 and before): a member stalled before
 *                     its take-new CAS lands on a later lap (docs/model.md,
 *                     "Holes found", 2)
 *   -DNO_TAKEOVER_FENCE the taker does not check the floor after its takeover
 *                     CAS (nor give a later lap's lease back)
 * Additions (must also verify): -DBACKOFF, a takeover may instead be the
 * redelivery back-off step: CAS the expired word to leased(nobody, same
 * deliveries), fenced the same way; a later takeover takes it from there.
 * Alternatives (must also verify): -DTAIL_LAST, the refresh reads the tail
 * after the floors and in-flight words instead of before them;
 * -DINTENT_AS_CODE, the intent handling of src/queue/producer.cpp at 6105ec4 (stored
 * just before the first tail CAS, kept across failed CASes, cleared before a
 * refresh when the ring looks full and before publishing again).
 * The publish without the mark (the code since format 7, docs/model.md "A
 * publish without the mark"): the producer does not mark the slot claimed;
 * its commit CASes the slot from the exact earlier word it read to
 * committed(s), and a reader validates its copy by its own lease word
 * (still the one it took) instead of by the slot state. Its reverted variant
 * -DSLOT_RECHECK (readers still validate by the slot state) must FAIL: a
 * torn read passes the re-check. -DREAD_FLOOR (the reader also checks that
 * the group floor has not passed the seq) must verify too. -DMARKED is the
 * protocol of formats up to 6 (the producer marks the slot claimed(s) by a
 * CAS before writing, readers re-check the slot state); it verified too.
 * Configuration switches (docs/model.md): TAKER_ONCE (block member 0 tries
 * take-new once only: the stalled taker of the take-new ABA), NP, MSGS, MSGS0, MSGS1, MAXSEQ, NB,
 * ND, MAXDEATHS, KILL_PRODUCERS_ONLY, MAXABORTS, MAXD, GEN_BITS, NO_ABORT,
 * NO_DOUBLE_ACK, END_TO_END_ONLY (only the end-to-end assertions: content,
 * loss, fencing, progress; not the direct "no store into a reused slot").
 * The defaults are the whole configuration of the issue (2 producers, block
 * group of 2, drop group of 1, a death, an abort): it does not fit in 4 GiB;
 * tests/model/CMakeLists.txt runs the configurations that do.
 */

/* the code's protocol unless -DMARKED: no mark, readers check their lease word */
#ifndef MARKED
#define MARK_FREE
#ifndef READ_FLOOR
#define NO_READ_FLOOR
#endif
#endif

/* ------------------------------------------------------------ configuration */
#define C 2                     /* capacity (the guards below are written for 2) */
#ifndef GEN_BITS
#define GEN_BITS 1              /* lease-word generation bits: wraps every 2 laps */
#endif
#ifndef NP
#define NP 2                    /* producers (1 or 2) */
#endif
#ifndef MSGS
#define MSGS 2                  /* messages per producer (ids 1 .. NMSG) */
#endif
#ifndef MSGS0
#define MSGS0 MSGS              /* ... of which producer 0 publishes MSGS0 */
#endif
#ifndef MSGS1
#define MSGS1 MSGS              /* ... and producer 1 MSGS1 */
#endif
#ifndef MAXABORTS
#define MAXABORTS 1             /* claims consumers may abort (each one is republished at a new seq) */
#endif
#ifndef MAXSEQ                  /* seqs 0 .. MAXSEQ-1 exist; a claim beyond halts the producer */
#if NP == 2
#define MAXSEQ (MSGS0 + MSGS1 + MAXABORTS)
#else
#define MAXSEQ (MSGS0 + MAXABORTS)
#endif
#endif
#ifndef NB
#define NB 2                    /* members of the block group (0, 1 or 2) */
#endif
#ifndef ND
#define ND 1                    /* members of the drop group (0 or 1) */
#endif
#ifndef MAXDEATHS
#define MAXDEATHS 1             /* processes the Killer may kill */
#endif
#ifndef MAXD
#define MAXD 2                  /* takeovers stop at this delivery count (dead-lettering is not modelled) */
#endif

#if NP == 2
#define NMSG (MSGS0 + MSGS1)
#else
#define NMSG MSGS0
#endif
#define NPROC (NP + NB + ND)
#define BLOCK 0
#define DROP 1
#define SLOT(s) ((s) % C)
/* no store into a reused slot: the slot is still ours while we write it */
#ifndef MARK_FREE
#define SLOT_STILL_OURS (sseq[i] == s)
#else
#define SLOT_STILL_OURS ((sseq[i] == ps && sst[i] == pt) || (sseq[i] == s && sst[i] == ABORTED))
#endif
#define GEN(s) (((s) / C) % (1 << GEN_BITS))
#define LW(g, s) ((g) * C + SLOT(s))
#define MIN(a, b) (((a) < (b)) -> (a) : (b))
#define NONE 255
#define NAME ((g == BLOCK) -> 'B' : 'D')   /* members print as B0, B1 (block group), D0 (drop group) */

/* slot states (low byte of the slot state word) */
#define FREE 0
#define CLAIMED 1
#define COMMITTED 2
#define ABORTED 3
/* lease word states */
#define EMPTY 0
#define LEASED 1
#define SETTLED 2

/* A settled word's seq: the whole seq (format 4), or nothing (format 3, where
   only the generation told the laps apart). */
#ifndef SETTLED_GEN_ONLY
#define SQ(s) (s)
#define SETTLED_FOR(j, s) (lst[j] == SETTLED && lsq[j] == (s))
#else
#define SQ(s) 0
#define SETTLED_FOR(j, s) (lst[j] == SETTLED && lgen[j] == GEN(s))
#endif

/* ----------------------------------------------------------------- shared */
byte tail;                      /* next seq to claim */
byte floor_word;                /* min floor as last computed; only rises */
byte in_flight[NP];             /* 0, or 1 + lowest seq the producer may still store into */
byte sseq[C];                   /* slot state word: seq ... */
byte sst[C];                    /* ... and state */
byte d0[C];                     /* payload, first half (message id) */
byte d1[C];                     /* payload, second half */
byte nxt[2];                    /* group dispatch cursors */
byte gfl[2];                    /* group floors */
byte lst[2 * C];                /* lease words: state */
byte lgen[2 * C];               /*   generation */
byte lown[2 * C];               /*   owner (member index) */
byte ldel[2 * C];               /*   deliveries */
byte lsq[2 * C];                /*   seq, in a settled word (format 4); 0 in an empty or leased one */

/* ------------------------------------------------------------ liveness */
bool alive[NPROC];              /* false: dead for ever */
bool fin[NPROC];                /* producer returned from its last publish */
byte deaths;
byte aborts;                    /* claims aborted so far (bounded by MAXABORTS) */

/* ----------------------------------------------------- ghosts (not in the file) */
byte lseq[2 * C];               /* the seq whose delivery the lease word is (for the fencing assertion) */
byte smsg[MAXSEQ];              /* message committed at seq */
bool okm[NMSG + 1];             /* publish of message m returned ok */
byte mseq[NMSG + 1];            /* ... at this seq */
bool backed[MAXSEQ];            /* acked in the block group by the receipt of its own delivery */
bool halted[NP];                /* producer stopped by the model bound MAXSEQ (not a protocol outcome) */

/* The floor a refresh would compute now (used only to wake a waiting producer;
   the refresh itself reads word by word). */
#if NB > 0
#define BFL gfl[BLOCK]
#else
#define BFL 255
#endif
#if ND > 0
#define DFL gfl[DROP]
#else
#define DFL 255
#endif
#ifdef NO_INTENT
#define IFL 255
#else
#define IFQ(q) ((alive[q] && in_flight[q] != 0) -> (in_flight[q] - 1) : 255)
#if NP == 2
#define IFL MIN(IFQ(0), IFQ(1))
#else
#define IFL IFQ(0)
#endif
#endif
#define TRUEFLOOR MIN(MIN(tail, BFL), MIN(DFL, IFL))
#define WANT(t) (((t) + 1 >= C) -> ((t) + 1 - C) : 0)
#if ND > 0
#define DROP_PUSHABLE(t) (gfl[DROP] < WANT(t) && gfl[DROP] < tail)
#else
#define DROP_PUSHABLE(t) false
#endif

/* ========================================================== producers */

/* Drop policy: push the drop group to `target` (next, settle, floor). */
inline push_drop(target) {
  /* 1. next first, so members stop taking seqs below target */
  d_step { if :: nxt[DROP] < target -> nxt[DROP] = target; printf("P%d: pushes drop group: next = %d\n", p, target) :: else -> skip fi }
  /* @step drop.after_next */
  f = gfl[DROP];
  s = ((target > f + C) -> (target - C) : f);
  do
  :: s < target ->
     /* 2. settle every unsettled word below target (a CAS loop on the word) */
     d_step {
       i = LW(DROP, s);
       if
       :: SETTLED_FOR(i, s) -> skip
       :: else -> lst[i] = SETTLED; lgen[i] = GEN(s); lown[i] = NONE; lsq[i] = SQ(s); lseq[i] = s;
          printf("P%d: settles drop group's seq %d dropped\n", p, s)
       fi
     }
     s++
  :: else -> break
  od;
  skip;
  /* @step drop.after_settle */
  /* 3. floor, last */
  d_step { if :: gfl[DROP] < target -> gfl[DROP] = target; printf("P%d: pushes drop group: floor = %d\n", p, target) :: else -> skip fi }
  f = 0; s = 0; i = 0
}

/* Refresh of the floor word: the ring looks full for a claim of t. */
inline refresh(t) {
  /* the floor word (for the CAS) and the tail: one step (the code reads them
     back to back; nothing in the argument depends on a change between them) */
  d_step { fw0 = floor_word; rt = tail };
#if ND > 0
  f = gfl[DROP];
  if
  :: f < WANT(t) && f < rt ->
     /* the drop group is what holds us back: push it */
     tgt = MIN(rt, WANT(t));
     push_drop(tgt)
  :: else -> skip
  fi;
#endif
#ifndef TAIL_LAST
  nf = rt;
#else
  nf = 255;
#endif
  /* every group's floor ... */
#if NB > 0
  nf = MIN(nf, gfl[BLOCK]);
#endif
#if ND > 0
  nf = MIN(nf, gfl[DROP]);
#endif
#ifndef NO_INTENT
  /* ... THEN every live producer's in-flight word */
  /* (one step: with two producers, the other one's word is the only one
     that can change during our scan) */
  d_step {
    if :: alive[0] && in_flight[0] != 0 -> nf = MIN(nf, in_flight[0] - 1) :: else -> skip fi;
#if NP == 2
    if :: alive[1] && in_flight[1] != 0 -> nf = MIN(nf, in_flight[1] - 1) :: else -> skip fi
#endif
  }
#endif
#ifdef TAIL_LAST
  /* the other order: the tail read last, after the in-flight words */
  d_step { nf = MIN(nf, tail) };
#endif
  /* @step refresh.after_scan */
  d_step { if :: floor_word == fw0 && nf > fw0 -> floor_word = nf; printf("P%d: floor_word = %d\n", p, nf) :: else -> skip fi };
  fw0 = 0; rt = 0; nf = 0; tgt = 0
}

proctype Producer(byte p) {
  byte k, m, t, fw, fw0, rt, nf, tgt, f, s, i;
  byte r;
#ifdef MARK_FREE
  byte ps, pt;                  /* the slot word the commit expects (read instead of the mark) */
#endif
  bool flagged;                 /* INTENT_AS_CODE: our in-flight word is set for this claim */
  {
  do
  :: k == ((p == 0) -> MSGS0 : MSGS1) -> break
  :: k < ((p == 0) -> MSGS0 : MSGS1) ->
     m = ((p == 0) -> 0 : MSGS0) + k + 1;
republish:
#ifndef INTENT_AS_CODE
     /* 1. intent */
     t = tail;
     d_step { in_flight[p] = t + 1; printf("P%d: in_flight = %d (m%d)\n", p, t + 1, m) };
     /* @step publish.after_intent */
#else
     /* src/queue/producer.cpp today: end_flight() before publishing again; the
        intent is stored just before the first tail CAS (below) */
     skip;
     d_step { in_flight[p] = 0; flagged = false };
     t = tail;
#endif
claim:
     if
     :: t >= MAXSEQ -> halted[p] = true; goto halt   /* model bound, not a protocol outcome */
     :: else -> skip
     fi;
     /* 2. room? then CAS tail t -> t+1 */
     fw = floor_word;
     if
     :: t < fw + C ->
#ifdef INTENT_AS_CODE
        if
        :: !flagged -> d_step { in_flight[p] = t + 1; flagged = true; printf("P%d: in_flight = %d (m%d)\n", p, t + 1, m) }
        :: else -> skip
        fi;
#endif
        d_step { if :: tail == t -> tail = t + 1; r = 1; printf("P%d: claims seq %d\n", p, t) :: else -> t = tail; r = 0 fi }
        if
#if defined(STALE_INTENT) || defined(INTENT_AS_CODE)
        :: r == 0 -> goto claim             /* the brief's text: in_flight keeps its older, lower value */
#else
        :: r == 0 -> goto republish         /* no claim held: store the intent again for the new tail */
#endif
        :: else -> skip
        fi
     :: else ->
#ifdef INTENT_AS_CODE
        /* "our own word must not hold the ring back while we look for room" */
        if
        :: flagged -> d_step { in_flight[p] = 0; flagged = false }
        :: else -> skip
        fi;
#endif
        refresh(t);
        if
        :: t < floor_word + C -> goto claim
        :: else -> skip
        fi;
end_wait:
        /* full: sleep until something that could make room changes */
        (tail != t || t < floor_word + C || TRUEFLOOR > floor_word || DROP_PUSHABLE(t));
#if defined(STALE_INTENT) || defined(INTENT_AS_CODE)
        d_step { if :: tail != t -> t = tail :: else -> skip fi };
        goto claim
#else
        if
        :: tail != t -> goto republish      /* the tail moved: a new intent for the new tail */
        :: else -> goto claim
        fi
#endif
     fi;
     /* @step publish.after_tail_cas */
     s = t; fw = 0;
     i = SLOT(s);
#ifndef MARK_FREE
     /* 3. mark: earlier lap or free(s) -> claimed(s) */
     d_step {
       if
       :: sseq[i] == s && sst[i] == ABORTED -> r = ABORTED; printf("P%d: mark finds seq %d aborted\n", p, s)
       :: sseq[i] < s || (sseq[i] == s && sst[i] == FREE) -> sseq[i] = s; sst[i] = CLAIMED; r = CLAIMED;
          printf("P%d: marks slot %d claimed(%d)\n", p, i, s)
       :: else -> r = FREE; printf("P%d: mark finds slot %d at seq %d (reused)\n", p, i, sseq[i])
       fi
     }
#else
     /* 3. no mark: read the word the commit will expect */
     d_step {
       ps = sseq[i]; pt = sst[i];
       if
       :: ps == s && pt == ABORTED -> r = ABORTED; printf("P%d: finds seq %d aborted\n", p, s)
       :: ps < s || (ps == s && pt == FREE) -> r = CLAIMED; printf("P%d: will write slot %d over seq %d\n", p, i, ps)
       :: else -> r = FREE; printf("P%d: finds slot %d at seq %d (reused)\n", p, i, sseq[i])
       fi
     }
#endif
#ifndef END_TO_END_ONLY
     assert(r != FREE);      /* invariant: never reused under a live claimer */
#endif
     if
     :: r == ABORTED -> goto republish
     :: r == FREE -> goto republish
     :: else -> skip
     fi;
     /* @step publish.after_slot_read */
     /* 4. payload, in two halves */
#ifndef END_TO_END_ONLY
     assert(SLOT_STILL_OURS);
#endif
     d_step { d0[i] = m; printf("P%d: writes 1st half of m%d into slot %d (slot is at seq %d, state %d)\n", p, m, i, sseq[i], sst[i]) };
     /* @step publish.mid_payload */
#ifndef END_TO_END_ONLY
     assert(SLOT_STILL_OURS);
#endif
     d_step { d1[i] = m; printf("P%d: writes 2nd half of m%d into slot %d (slot is at seq %d, state %d)\n", p, m, i, sseq[i], sst[i]) };
     /* @step publish.before_commit */
     /* 5. commit */
     d_step {
       if
#ifndef MARK_FREE
       :: sseq[i] == s && sst[i] == CLAIMED -> sst[i] = COMMITTED; smsg[s] = m; mseq[m] = s; r = COMMITTED;
#else
       :: sseq[i] == ps && sst[i] == pt -> sseq[i] = s; sst[i] = COMMITTED; smsg[s] = m; mseq[m] = s; r = COMMITTED;
#endif
          printf("P%d: commits seq %d = m%d\n", p, s, m)
       :: else -> r = ABORTED; printf("P%d: commit of seq %d fails (slot at seq %d, state %d): publish again\n", p, s, sseq[i], sst[i])
       fi
     }
     if
     :: r == ABORTED -> goto republish     /* aborted (or, in a reverted variant, reused): publish again */
     :: else -> skip
     fi;
     /* @step publish.after_commit */
     /* 6. clear the intent; publish returns ok */
     d_step { in_flight[p] = 0; okm[m] = true; printf("P%d: publish of m%d returns ok (seq %d)\n", p, m, s) };
     k++; t = 0; s = 0; i = 0; r = 0; m = 0
  od;
  fin[p] = true;
halt:
  skip
  } unless { !alive[p] }
}

/* ============================================================ members */

/* Copy the payload of seq n (slot i), then re-check the slot state: a
   seqlock read. An accepted read must be exactly the message of seq n. */
inline read_payload(n, dd) {
  d_step { r0 = d0[i]; r1 = d1[i] };
  /* @step receive.mid_read */
#if !defined(MARK_FREE) || defined(SLOT_RECHECK)
  d_step {
    ok = (sseq[i] == n && sst[i] == COMMITTED);
#else
  /* MARK_FREE: the copy is valid while our lease word is unchanged and the
     group floor (read after it) has not passed n: the slot cannot be reused
     before the floor passes n, nor the floor pass n while we hold its lease */
  ok = (lst[j] == LEASED && lgen[j] == GEN(n) && lown[j] == me && ldel[j] == dd);
  d_step {
#ifndef NO_READ_FLOOR
    ok = ok && gfl[g] <= n;
#endif
#endif
    if
    :: ok -> printf("%c%d: accepts seq %d delivery %d: read m%d/m%d, seq %d is m%d\n", NAME, me, n, dd, r0, r1, n, smsg[n])
    :: else -> printf("%c%d: discards its read of seq %d (slot moved on)\n", NAME, me, n)
    fi
  };
  if
  :: ok ->
     assert(r0 == smsg[n] && r1 == smsg[n]);   /* no torn or wrong content */
     if
     :: !rv[0] -> rs[0] = n; rd[0] = dd; rv[0] = true
     :: else -> rs[1] = n; rd[1] = dd; rv[1] = true
     fi
  :: else -> skip                               /* the slot moved on: discard */
  fi;
  r0 = 0; r1 = 0; ok = false
}

/* Floor advance: the run of words settled for their own seqs. */
inline advance_floor() {
  f = gfl[g];
  x = nxt[g];
  e = f;
  do
  :: e < x && e - f < C ->
     d_step { ok = SETTLED_FOR(LW(g, e), e) };
     if :: ok -> e++ :: else -> break fi
  :: else -> break
  od;
  skip;
  /* @step floor.after_scan */
  d_step { if :: e > f && gfl[g] == f -> gfl[g] = e; printf("%c%d: floor = %d\n", NAME, me, e) :: else -> skip fi };
  f = 0; x = 0; e = 0; ok = false
}

/* The lease word j as read: state, generation, owner, deliveries, settled seq */
#define READ_WORD(j) d_step { ws = lst[j]; wg = lgen[j]; wo = lown[j]; wd = ldel[j]; wq = lsq[j] }
#define WORD_IS(j) (lst[j] == ws && lgen[j] == wg && lown[j] == wo && ldel[j] == wd && lsq[j] == wq)
#ifndef SETTLED_GEN_ONLY
#define READ_SETTLED_FOR(s) (ws == SETTLED && wq == (s))
#else
#define READ_SETTLED_FOR(s) (ws == SETTLED && wg == GEN(s))
#endif

#define HAS_ROOM (!rv[0] || (g == BLOCK && !rv[1]))
#ifdef TAKER_ONCE
#define MAY_TAKE (g != BLOCK || me != 0 || tries == 0)
#else
#define MAY_TAKE true
#endif
#define HAS_EXPIRABLE (lst[g * C] == LEASED && ldel[g * C] < MAXD || lst[g * C + 1] == LEASED && ldel[g * C + 1] < MAXD)
/* the head of the group is committed or aborted (else only an abort can be done there) */
#define HEAD_READY (sseq[SLOT(nxt[g])] == nxt[g] && (sst[SLOT(nxt[g])] == COMMITTED || sst[SLOT(nxt[g])] == ABORTED))
#define FLOOR_CAN_MOVE (gfl[g] < nxt[g] && SETTLED_FOR(LW(g, gfl[g]), gfl[g]))

proctype Member(byte g; byte me; byte id) {
  byte n, i, s, j, f, x, e, dd, ri;
  byte vs, vt;                  /* slot state word as read */
  byte ws, wg, wo, wd, wq;      /* lease word as read */
  byte ls;                      /* ghost: the seq the word we took over was (to give it back) */
  byte r0, r1;
  byte rs[2], rd[2];            /* receipts held: (seq, deliveries) */
  bool rv[2];
  bool ok;
#ifdef BACKOFF
  bool backing;                 /* this takeover is the back-off step */
#endif
#ifdef TAKER_ONCE
  byte tries;                   /* take-new attempts of block member 0 */
#endif
  {
end_idle:
  do
  /* ---------------------------------------------------- take new */
  :: nxt[g] < tail && HAS_ROOM && (HEAD_READY || aborts < MAXABORTS) && MAY_TAKE ->
#ifdef TAKER_ONCE
     if :: g == BLOCK && me == 0 -> tries = 1 :: else -> skip fi;
#endif
     n = nxt[g];
     i = SLOT(n);
     d_step { vs = sseq[i]; vt = sst[i] };
     if
     :: vs == n && (vt == COMMITTED || vt == ABORTED) ->
        /* @step receive.after_slot_check */
        j = LW(g, n);
        READ_WORD(j);
        if
        :: (ws == LEASED && wg == GEN(n)) || READ_SETTLED_FOR(n) ->
           /* taken already: help next forward */
           d_step { if :: nxt[g] == n -> nxt[g] = n + 1 :: else -> skip fi }
        :: else ->
           if
           :: nxt[g] == n ->
              if
              :: vt == COMMITTED ->
                 d_step {
                   if
                   :: WORD_IS(j) -> lst[j] = LEASED; lgen[j] = GEN(n); lown[j] = me; ldel[j] = 1; lsq[j] = 0; lseq[j] = n; ok = true;
                      printf("%c%d: leases seq %d (delivery 1)\n", NAME, me, n)
                   :: else -> ok = false
                   fi
                 }
                 if
                 :: ok ->
                    /* @step receive.after_lease_cas */
                    d_step { if :: nxt[g] == n -> nxt[g] = n + 1 :: else -> skip fi };
                    read_payload(n, 1)
                    /* @step receive.linger */
                    /* (ConsumerOptions::linger: the member holds what it took and
                       reads nothing of the queue for a while; here, as anywhere
                       between two of its steps, it may stall for any time) */
                 :: else -> skip
                 fi
              :: else ->
                 /* aborted(n): settle it skipped */
                 d_step {
                   if
                   :: WORD_IS(j) -> lst[j] = SETTLED; lgen[j] = GEN(n); lown[j] = NONE; ldel[j] = 0; lsq[j] = SQ(n); lseq[j] = n; ok = true;
                      printf("%c%d: settles aborted seq %d skipped\n", NAME, me, n)
                   :: else -> ok = false
                   fi
                 }
                 if
                 :: ok -> d_step { if :: nxt[g] == n -> nxt[g] = n + 1 :: else -> skip fi }
                 :: else -> skip
                 fi
              fi
           :: else -> skip
           fi
        fi
     :: else ->
        /* not committed(n): a stuck head if the tail is past it. The claimer
           is dead, or (timeouts are nondeterministic) it timed out: abort. */
        /* (Judging it not stuck yet is the same as not having looked: the
           member may stall here, or before the poll, for any time.) */
#ifndef NO_ABORT
        if
#ifndef ABORT_ANY_LAP
        /* Only a claim of seq n itself (claimed(n)) or one not yet marked
           (free(n), or a state of an earlier lap) is judged. A state of a
           LATER lap means our n is stale (a drop group was pushed past it):
           aborting there would turn a live claim of n + C back into
           aborted(n) (docs/model.md, "abort must not judge a later lap"). */
        :: tail > n && aborts < MAXABORTS && (vs < n || (vs == n && (vt == FREE || vt == CLAIMED))) ->
#else
        :: tail > n && aborts < MAXABORTS ->   /* the literal "slot not committed(n)" */
#endif
           /* @step abort.after_judge */
           d_step { if :: sseq[i] == vs && sst[i] == vt -> sseq[i] = n; sst[i] = ABORTED; aborts++; printf("%c%d: aborts seq %d\n", NAME, me, n) :: else -> skip fi }
        :: else -> skip
        fi
#else
        skip
#endif
     fi;
     n = 0; i = 0; j = 0; vs = 0; vt = 0; ws = 0; wg = 0; wo = 0; wd = 0; wq = 0; ok = false

  /* ------------------------------------------- take over an expired lease */
  :: HAS_EXPIRABLE && HAS_ROOM ->
     f = gfl[g];
     x = nxt[g];
     if
     :: f < x ->
        s = f;
        if :: s + 1 < x -> s++ :: true -> skip fi;   /* any seq of [floor, next) */
        i = SLOT(s);
        j = LW(g, s);
        READ_WORD(j);
        if
        :: ws == LEASED && wg == GEN(s) && wd < MAXD ->   /* expired (nondeterministic), or its holder died */
#ifdef BACKOFF
           /* A lease that ran out in a member's hands: either taken over now
              (its back-off has passed) or first moved to leased(nobody, d)
              until its back-off passes (src/queue/consumer.cpp take_expired). */
           if :: wo != NONE -> backing = true :: true -> backing = false fi;
#endif
           /* @step takeover.before_lease_cas */
           d_step {
             if
#ifdef BACKOFF
             :: WORD_IS(j) && backing -> lown[j] = NONE; ls = lseq[j]; lseq[j] = s; ok = true;
                printf("%c%d: backs off seq %d (delivery %d)\n", NAME, me, s, wd)
             :: WORD_IS(j) && !backing -> lown[j] = me; ldel[j] = wd + 1; ls = lseq[j]; lseq[j] = s; ok = true;
                printf("%c%d: takes over seq %d (delivery %d)\n", NAME, me, s, wd + 1)
#else
             :: WORD_IS(j) -> lown[j] = me; ldel[j] = wd + 1; ls = lseq[j]; lseq[j] = s; ok = true;
                printf("%c%d: takes over seq %d (delivery %d)\n", NAME, me, s, wd + 1)
#endif
             :: else -> ok = false
             fi
           }
           if
           :: ok ->
              /* @step takeover.after_lease_cas */
#ifndef NO_TAKEOVER_FENCE
              if
              :: gfl[g] > s ->
                 /* the floor passed s: the word we took was a later lap's
                    live lease (s's lap was settled); give it back */
                 d_step {
                   if
#ifdef BACKOFF
                   :: backing && lst[j] == LEASED && lgen[j] == wg && lown[j] == NONE && ldel[j] == wd && lsq[j] == 0 ->
                      lown[j] = wo; lseq[j] = ls;
                      printf("%c%d: gives back the lease it backed off (a later lap's)\n", NAME, me)
#endif
                   :: lst[j] == LEASED && lgen[j] == wg && lown[j] == me && ldel[j] == wd + 1 && lsq[j] == 0 ->
                      lown[j] = wo; ldel[j] = wd; lseq[j] = ls;
                      printf("%c%d: gives back the lease it took over (a later lap's)\n", NAME, me)
                   :: else -> skip
                   fi
                 }
#ifdef BACKOFF
              :: else -> if :: backing -> skip :: else -> dd = wd + 1; read_payload(s, dd) fi
#else
              :: else ->
                 dd = wd + 1;
                 read_payload(s, dd)
#endif
              fi
#else
#ifdef BACKOFF
              if :: backing -> skip :: else -> dd = wd + 1; read_payload(s, dd) fi
#else
              dd = wd + 1;
              read_payload(s, dd)
#endif
#endif
           :: else -> skip
           fi
        :: else -> skip
        fi
     :: else -> skip
     fi;
     f = 0; x = 0; s = 0; i = 0; j = 0; ws = 0; wg = 0; wo = 0; wd = 0; wq = 0; dd = 0; ls = 0; ok = false;
#ifdef BACKOFF
     backing = false;
#endif

  /* ------------------------------------------------ ack a receipt held */
  :: rv[0] || rv[1] ->
     if :: rv[0] -> ri = 0 :: rv[1] -> ri = 1 fi;
     s = rs[ri];
     dd = rd[ri];
     j = LW(g, s);
retry_ack: skip;
     READ_WORD(j);
     if
     :: ws == LEASED && wg == GEN(s) && wd == dd && wo == me ->
#ifndef NO_FLOOR_FENCE
        /* the second fence: generation bits wrap */
        if
        :: gfl[g] > s -> goto lease_lost
        :: else -> skip
        fi;
#endif
        /* @step ack.after_floor_check */
        d_step {
          if
          :: WORD_IS(j) ->
             printf("%c%d: ack(seq %d, delivery %d) settles the lease of seq %d delivery %d\n", NAME, me, s, dd, lseq[j], ldel[j]);
             assert(lseq[j] == s);          /* fencing: only the delivery the receipt was issued for */
             lst[j] = SETTLED; lown[j] = NONE; lsq[j] = SQ(s);
             if :: g == BLOCK -> backed[s] = true :: else -> skip fi;
             ok = true
          :: else -> ok = false
          fi
        }
        if
        :: ok ->
           /* @step ack.after_settle */
           ws = 0; wg = 0; wo = 0; wd = 0; wq = 0;
#ifndef NO_DOUBLE_ACK
           if
           :: rv[ri] = false
           :: skip                           /* keep the receipt: the application may ack it again */
           fi;
#else
           rv[ri] = false;
#endif
           advance_floor()
        :: else -> goto retry_ack
        fi
     :: else ->
lease_lost: skip;
        d_step { rv[ri] = false; printf("%c%d: ack(seq %d, delivery %d) -> lease_lost\n", NAME, me, s, dd) }
     fi;
     if :: !rv[ri] -> rs[ri] = 0; rd[ri] = 0 :: else -> skip fi;
     ri = 0; s = 0; dd = 0; j = 0; ws = 0; wg = 0; wo = 0; wd = 0; wq = 0; ok = false

  /* -------------------- help the floor over a settled run (e.g. after a skip) */
  :: FLOOR_CAN_MOVE ->
     advance_floor()
  od
  } unless { !alive[id] }
}

/* ============================================================ killer */
/* Kills up to MAXDEATHS processes, each at any point. While it still has a
   victim it can always move, so the final check (at `timeout`) runs only on
   runs where all MAXDEATHS deaths happened (possibly at the very end), or
   where no victim is left (KILL_PRODUCERS_ONLY, producers finished); the
   progress assertions need deaths == 0 (a MAXDEATHS=0 configuration). */
#if MAXDEATHS > 0
#define KILL(k, extra) :: d_step { deaths < MAXDEATHS && alive[k] extra -> alive[k] = false; deaths++; printf("Killer: process %d dies\n", k) }
active proctype Killer() {
end:
  do
  KILL(0, && !fin[0])
#if NPROC > 1 && (NP > 1 || !defined(KILL_PRODUCERS_ONLY))
  KILL(1, && !fin[1])
#endif
#ifndef KILL_PRODUCERS_ONLY
#if NPROC > 2
  KILL(2, )
#endif
#if NPROC > 3
  KILL(3, )
#endif
#if NPROC > 4
  KILL(4, )
#endif
#endif
  od
}
#endif

/* ============================================================ final check */
active proctype Checker() {
  byte m, s;
  timeout;          /* nothing can move any more */
  m = 1;
  do
  :: m <= NMSG ->
     s = mseq[m];
#if NB > 0
     /* no loss: an acknowledged publish was acked in the block group, or is
        still there to be delivered (slot intact, floor not past it) */
     assert(!okm[m] || backed[s] ||
            (sseq[SLOT(s)] == s && sst[SLOT(s)] == COMMITTED && d0[SLOT(s)] == m && d1[SLOT(s)] == m &&
             gfl[BLOCK] <= s && !(lst[LW(BLOCK, s)] == SETTLED && lseq[LW(BLOCK, s)] == s)));
     /* with nobody dead, everything published was acked */
     assert(deaths > 0 || !okm[m] || backed[s]);
#endif
     m++
  :: else -> break
  od;
#if NB > 0
  /* with nobody dead, the block group settled everything and its floor
     reached the tail (a floor stuck below the tail wedges every producer) */
  assert(deaths > 0 || gfl[BLOCK] == tail);
#endif
  /* with nobody dead, every producer finished (or hit the model bound) */
  assert(deaths > 0 || ((fin[0] || halted[0]) && (NP < 2 || fin[NP - 1] || halted[NP - 1])))
}

init {
  byte i;
  atomic {
    /* free(i) in slot i */
    i = 0;
    do :: i < C -> sseq[i] = i; sst[i] = FREE; i++ :: else -> break od;
    i = 0;
    do :: i < NPROC -> alive[i] = true; i++ :: else -> break od;
    i = 0;
    run Producer(0);
#if NP == 2
    run Producer(1);
#endif
#if NB > 0
    run Member(BLOCK, 0, NP);
#endif
#if NB > 1
    run Member(BLOCK, 1, NP + 1);
#endif
#if ND > 0
    run Member(DROP, 0, NP + NB);
#endif
  }
}
