/// The publisher confirms of one channel in confirm mode, as plain numbers: no connection, no C.
///
/// Each publish gets the next sequence number (1, 2, 3...). The broker settles them with
/// `basic.ack` or `basic.nack`, whose delivery tag is a sequence number: one publish, or with
/// `multiple` every publish still outstanding up to and including it. An outcome is kept
/// until someone claims it (``claim(_:)``), so a waiter finds it even if it arrived while
/// waiting for another one.
///
/// Memory stays bounded: sequences are held as runs of consecutive numbers (a thousand
/// pipelined publishes that the broker acks in order are one run), and at most
/// ``retention`` runs of unclaimed outcomes are kept; past that, the oldest (lowest) are
/// forgotten, and a waiter for one of those hears nothing.
///
/// A tag the tracker does not hold as outstanding (a duplicate, a publish already settled,
/// one never made) changes nothing.
package struct ConfirmTracker: Sendable, Equatable {
    /// Consecutive settled sequence numbers with the same outcome.
    struct SettledRun: Sendable, Equatable {
        var range: ClosedRange<UInt64>
        var outcome: AMQPConfirm
    }

    /// How many runs of unclaimed outcomes are kept before the oldest are forgotten.
    package let retention: Int
    /// The sequence number the next publish gets.
    package private(set) var nextSequence: UInt64 = 1
    /// Published, not settled yet: disjoint, ascending, never adjacent.
    private(set) var outstanding: [ClosedRange<UInt64>] = []
    /// Settled, not claimed yet: disjoint, ascending; adjacent runs with the same outcome are merged.
    private(set) var settled: [SettledRun] = []

    package init(retention: Int = 4096) {
        precondition(retention > 0, "a confirm tracker must keep at least one outcome")
        self.retention = retention
    }

    /// Records a publish; returns its sequence number.
    package mutating func published() -> UInt64 {
        let sequence = nextSequence
        nextSequence += 1
        if let last = outstanding.last, last.upperBound == sequence - 1 {
            outstanding[outstanding.count - 1] = last.lowerBound...sequence
        } else {
            outstanding.append(sequence...sequence)
        }
        return sequence
    }

    /// Records the broker's `basic.ack` (`.ack`) or `basic.nack` (`.nack`) with its delivery tag.
    package mutating func received(_ outcome: AMQPConfirm, deliveryTag: UInt64, multiple: Bool) {
        if multiple {
            // Every outstanding sequence up to the tag, lowest first.
            var consumed = 0
            var rest: ClosedRange<UInt64>?
            for run in outstanding {
                guard run.lowerBound <= deliveryTag else { break }
                if run.upperBound <= deliveryTag {
                    settle(run, as: outcome)
                    consumed += 1
                } else {
                    settle(run.lowerBound...deliveryTag, as: outcome)
                    rest = (deliveryTag + 1)...run.upperBound
                    break
                }
            }
            outstanding.removeFirst(consumed)
            if let rest { outstanding[0] = rest }
        } else {
            guard let index = Self.index(of: deliveryTag, in: outstanding, \.self) else { return }
            Self.remove(deliveryTag, from: &outstanding, at: index, \.self)
            settle(deliveryTag...deliveryTag, as: outcome)
        }
    }

    /// The broker's answer to publish `sequence`, if it came and nobody claimed it.
    package func outcome(of sequence: UInt64) -> AMQPConfirm? {
        Self.index(of: sequence, in: settled, \.range).map { settled[$0].outcome }
    }

    /// The broker's answer to publish `sequence`, forgotten once returned; nil if none is held.
    package mutating func claim(_ sequence: UInt64) -> AMQPConfirm? {
        guard let index = Self.index(of: sequence, in: settled, \.range) else { return nil }
        let outcome = settled[index].outcome
        Self.remove(sequence, from: &settled, at: index, \.range)
        return outcome
    }

    /// True while publish `sequence` waits for the broker's answer.
    package func isOutstanding(_ sequence: UInt64) -> Bool {
        Self.index(of: sequence, in: outstanding, \.self) != nil
    }

    /// How many publishes wait for the broker's answer.
    package var outstandingCount: Int {
        outstanding.reduce(0) { $0 + Int($1.upperBound - $1.lowerBound + 1) }
    }

    /// How many runs the tracker holds (outstanding and settled): what its memory grows with.
    package var storedRuns: Int { outstanding.count + settled.count }

    // MARK: - Runs

    /// Adds settled sequences (none of them held yet), merging with same-outcome neighbours,
    /// then forgets the oldest runs beyond ``retention``.
    private mutating func settle(_ range: ClosedRange<UInt64>, as outcome: AMQPConfirm) {
        var index = Self.insertionIndex(for: range.lowerBound, in: settled)
        var run = SettledRun(range: range, outcome: outcome)
        if index > 0, settled[index - 1].outcome == outcome, settled[index - 1].range.upperBound + 1 == range.lowerBound {
            run.range = settled[index - 1].range.lowerBound...run.range.upperBound
            settled.remove(at: index - 1)
            index -= 1
        }
        if index < settled.count, settled[index].outcome == outcome, range.upperBound + 1 == settled[index].range.lowerBound {
            run.range = run.range.lowerBound...settled[index].range.upperBound
            settled.remove(at: index)
        }
        settled.insert(run, at: index)
        if settled.count > retention { settled.removeFirst(settled.count - retention) }
    }

    /// Where a run starting at `lowerBound` goes in `settled` (the first run above it).
    private static func insertionIndex(for lowerBound: UInt64, in runs: [SettledRun]) -> Int {
        var low = 0
        var high = runs.count
        while low < high {
            let middle = (low + high) / 2
            if runs[middle].range.lowerBound < lowerBound { low = middle + 1 } else { high = middle }
        }
        return low
    }

    /// The run holding `sequence` (binary search over ascending, disjoint runs).
    private static func index<Run>(of sequence: UInt64, in runs: [Run], _ range: KeyPath<Run, ClosedRange<UInt64>>) -> Int? {
        var low = 0
        var high = runs.count
        while low < high {
            let middle = (low + high) / 2
            let candidate = runs[middle][keyPath: range]
            if candidate.upperBound < sequence {
                low = middle + 1
            } else if candidate.lowerBound > sequence {
                high = middle
            } else {
                return middle
            }
        }
        return nil
    }

    /// Takes `sequence` out of the run at `index`, which holds it: the run shrinks, splits in two, or goes.
    private static func remove<Run>(
        _ sequence: UInt64, from runs: inout [Run], at index: Int, _ range: WritableKeyPath<Run, ClosedRange<UInt64>>
    ) {
        let whole = runs[index][keyPath: range]
        switch (whole.lowerBound == sequence, whole.upperBound == sequence) {
        case (true, true):
            runs.remove(at: index)
        case (true, false):
            runs[index][keyPath: range] = (sequence + 1)...whole.upperBound
        case (false, true):
            runs[index][keyPath: range] = whole.lowerBound...(sequence - 1)
        case (false, false):
            var upper = runs[index]
            upper[keyPath: range] = (sequence + 1)...whole.upperBound
            runs[index][keyPath: range] = whole.lowerBound...(sequence - 1)
            runs.insert(upper, at: index + 1)
        }
    }
}
