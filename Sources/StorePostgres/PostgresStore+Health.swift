import Store

extension PostgresStore: StoreHealth {
    package func reason(for error: any Error) -> String { Self.reason(error) }
}
