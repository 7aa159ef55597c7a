// ackring: shared-memory message queue with consumer groups, leases, acks and
// dead-lettering. Include this one header.
#pragma once

#include "ackring/consumer.hpp"
#include "ackring/dead_letter.hpp"
#include "ackring/error.hpp"
#include "ackring/journal.hpp"
#include "ackring/options.hpp"
#include "ackring/producer.hpp"
#include "ackring/queue.hpp"
#include "ackring/stats.hpp"
#include "ackring/status.hpp"
