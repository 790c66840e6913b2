import Store

extension SQLiteStore: StoreHealth {
    package func reason(for error: any Error) -> String { Self.reason(error) }
}
