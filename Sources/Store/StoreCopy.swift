import Foundation

/// Everything a store holds, in batches, as `chatbridge store copy` moves it from one
/// store to another: the fingerprint seed, the sources with their health and account
/// state, the snapshot, polls, events, digests, the outbox (pending, delivered and dead)
/// and throttle windows. Ids are kept, so that `webhook-id`s, digest rows and event
/// order stay what they were, and the copied bridge needs no new baseline.
package enum StoreCopyBatch: Sendable {
    case fingerprintSeed(UInt64)
    case sources([SourceRecord])
    case chats([Chat])
    case polls([Poll])
    case events([Event])
    case digests([Digest])
    case digestEvents([DigestEvent])
    case deliveries([Delivery])
    case throttles([Throttle])

    package struct Chat: Sendable, Hashable {
        package var source: String
        package var id: String
        package var accountID: String?
        package var accountType: String?
        package var raw: Data
        package var fingerprint: Int64
        package var missing: Int
        package var updatedAt: Date
        package init(source: String, id: String, accountID: String?, accountType: String?, raw: Data, fingerprint: Int64, missing: Int, updatedAt: Date) {
            self.source = source
            self.id = id
            self.accountID = accountID
            self.accountType = accountType
            self.raw = raw
            self.fingerprint = fingerprint
            self.missing = missing
            self.updatedAt = updatedAt
        }
    }

    package struct Poll: Sendable, Hashable {
        package var source: String
        package var startedAt: Date
        package var finishedAt: Date
        package var outcome: String
        package var error: String?
        package var pages: Int
        package var items: Int
        package var changed: Int
        package var events: Int
        package init(source: String, startedAt: Date, finishedAt: Date, outcome: String, error: String?, pages: Int, items: Int, changed: Int, events: Int) {
            self.source = source
            self.startedAt = startedAt
            self.finishedAt = finishedAt
            self.outcome = outcome
            self.error = error
            self.pages = pages
            self.items = items
            self.changed = changed
            self.events = events
        }
    }

    package struct Event: Sendable, Hashable {
        package var sequence: Int64
        package var id: String
        package var type: String
        package var kinds: String
        package var source: String
        package var chatID: String?
        package var occurredAt: Date
        package var json: String
        package init(sequence: Int64, id: String, type: String, kinds: String, source: String, chatID: String?, occurredAt: Date, json: String) {
            self.sequence = sequence
            self.id = id
            self.type = type
            self.kinds = kinds
            self.source = source
            self.chatID = chatID
            self.occurredAt = occurredAt
            self.json = json
        }
    }

    package struct Digest: Sendable, Hashable {
        package var id: Int64
        package var rule: String
        package var sink: String
        package var openedAt: Date
        package var closesAt: Date
        package var sealed: Bool
        package init(id: Int64, rule: String, sink: String, openedAt: Date, closesAt: Date, sealed: Bool) {
            self.id = id
            self.rule = rule
            self.sink = sink
            self.openedAt = openedAt
            self.closesAt = closesAt
            self.sealed = sealed
        }
    }

    package struct DigestEvent: Sendable, Hashable {
        package var digestID: Int64
        package var eventID: String
        package init(digestID: Int64, eventID: String) {
            self.digestID = digestID
            self.eventID = eventID
        }
    }

    package struct Delivery: Sendable, Hashable {
        package var id: Int64
        package var eventID: String
        package var rule: String?
        package var sink: String
        package var orderingKey: String
        package var status: String
        package var attempts: Int
        package var nextAttemptAt: Date
        package var lastStatus: Int?
        package var lastError: String?
        package var createdAt: Date
        package var deliveredAt: Date?
        package var finishedAt: Date?
        package var digestID: Int64?
        package init(id: Int64, eventID: String, rule: String?, sink: String, orderingKey: String, status: String, attempts: Int, nextAttemptAt: Date, lastStatus: Int?, lastError: String?, createdAt: Date, deliveredAt: Date?, finishedAt: Date?, digestID: Int64?) {
            self.id = id
            self.eventID = eventID
            self.rule = rule
            self.sink = sink
            self.orderingKey = orderingKey
            self.status = status
            self.attempts = attempts
            self.nextAttemptAt = nextAttemptAt
            self.lastStatus = lastStatus
            self.lastError = lastError
            self.createdAt = createdAt
            self.deliveredAt = deliveredAt
            self.finishedAt = finishedAt
            self.digestID = digestID
        }
    }

    package struct Throttle: Sendable, Hashable {
        package var rule: String
        package var orderingKey: String
        package var until: Date
        package init(rule: String, orderingKey: String, until: Date) {
            self.rule = rule
            self.orderingKey = orderingKey
            self.until = until
        }
    }

    /// Rows in this batch (1 for the seed).
    package var count: Int {
        switch self {
        case .fingerprintSeed: 1
        case .sources(let rows): rows.count
        case .chats(let rows): rows.count
        case .polls(let rows): rows.count
        case .events(let rows): rows.count
        case .digests(let rows): rows.count
        case .digestEvents(let rows): rows.count
        case .deliveries(let rows): rows.count
        case .throttles(let rows): rows.count
        }
    }
}

/// A store `chatbridge store copy` reads from.
package protocol StoreExporting: Sendable {
    /// Hands every row to `sink`, table by table in an order an importer can follow
    /// (events before the digests and deliveries that name them), `batchSize` rows at a time.
    func export(batchSize: Int, into sink: (StoreCopyBatch) async throws -> Void) async throws
}

/// A store `chatbridge store copy` writes into.
package protocol StoreImporting: Sendable {
    /// Whether the store holds no source, chat, event or delivery yet.
    func holdsNoData() async throws -> Bool
    /// Deletes everything the store holds (`store copy --replace`).
    func eraseAll() async throws
    /// Writes one batch, keeping its ids.
    func importBatch(_ batch: StoreCopyBatch) async throws
    /// After the last batch: id sequences continue after the copied ids.
    func finishImport() async throws
}
