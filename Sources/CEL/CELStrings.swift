import Foundation

/// String operations with CEL's meaning: a string is a sequence of Unicode code points,
/// compared and searched with no normalisation.
///
/// Swift's `String` compares by canonical equivalence (`"\u{E9}" == "e\u{301}"`) and
/// searches by `Character`, so every operation here works on UTF-8 bytes instead. UTF-8
/// preserves code point order and is self-synchronising, so byte order is code point
/// order and a byte-level match of valid UTF-8 always starts on a code point.
enum CELStrings {
    /// Code-point equality.
    @inline(__always)
    static func equal(_ a: String, _ b: String) -> Bool {
        let au = a.utf8, bu = b.utf8
        guard au.count == bu.count else { return false }
        if let result = au.withContiguousStorageIfAvailable({ pa in
            bu.withContiguousStorageIfAvailable { pb in
                pa.count == 0 || memcmp(pa.baseAddress!, pb.baseAddress!, pa.count) == 0
            }
        }), let result {
            return result
        }
        return au.elementsEqual(bu)
    }

    /// Code-point order: negative, zero or positive.
    static func compare(_ a: String, _ b: String) -> Int {
        var ai = a.utf8.makeIterator(), bi = b.utf8.makeIterator()
        while true {
            switch (ai.next(), bi.next()) {
            case (nil, nil): return 0
            case (nil, _): return -1
            case (_, nil): return 1
            case let (x?, y?): if x != y { return x < y ? -1 : 1 }
            }
        }
    }

    /// The number of code points.
    static func size(_ s: String) -> Int { s.unicodeScalars.count }

    static func startsWith(_ s: String, _ prefix: String) -> Bool {
        let su = s.utf8, pu = prefix.utf8
        guard pu.count <= su.count else { return false }
        return su.prefix(pu.count).elementsEqual(pu)
    }

    static func endsWith(_ s: String, _ suffix: String) -> Bool {
        let su = s.utf8, xu = suffix.utf8
        guard xu.count <= su.count else { return false }
        return su.suffix(xu.count).elementsEqual(xu)
    }

    /// Substring search in linear time (Knuth–Morris–Pratt): both sides may be chat text.
    static func contains(_ s: String, _ needle: String) -> Bool {
        let pattern = Array(needle.utf8)
        if pattern.isEmpty { return true }
        let text = Array(s.utf8)
        guard pattern.count <= text.count else { return false }
        // failure[i]: length of the longest proper prefix of pattern[...i] that is also its suffix.
        var failure = [Int](repeating: 0, count: pattern.count)
        var k = 0
        for i in 1..<max(pattern.count, 1) {
            while k > 0, pattern[i] != pattern[k] { k = failure[k - 1] }
            if pattern[i] == pattern[k] { k += 1 }
            failure[i] = k
        }
        var matched = 0
        for byte in text {
            while matched > 0, byte != pattern[matched] { matched = failure[matched - 1] }
            if byte == pattern[matched] { matched += 1 }
            if matched == pattern.count { return true }
        }
        return false
    }

    /// ASCII letters changed to lower case; every other code point unchanged.
    static func lowerASCII(_ s: String) -> String {
        String(decoding: s.utf8.map { (0x41...0x5A).contains($0) ? $0 + 0x20 : $0 }, as: UTF8.self)
    }

    /// ASCII letters changed to upper case; every other code point unchanged.
    static func upperASCII(_ s: String) -> String {
        String(decoding: s.utf8.map { (0x61...0x7A).contains($0) ? $0 - 0x20 : $0 }, as: UTF8.self)
    }

    /// `s` between double quotes with `"`, `\` and every control or non-printing code
    /// point escaped, so it cannot break the line or the quoting it is shown in.
    static func quoted(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value)
                    || scalar.properties.generalCategory == .lineSeparator
                    || scalar.properties.generalCategory == .paragraphSeparator
                    || scalar.properties.generalCategory == .format
                {
                    out += scalar.value <= 0xFFFF
                        ? "\\u" + hex(scalar.value, width: 4)
                        : "\\U" + hex(scalar.value, width: 8)
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }

    /// A short, escaped, quoted excerpt of hostile text for an error message.
    static func excerpt(_ s: String, limit: Int = 40) -> String {
        let scalars = s.unicodeScalars
        if scalars.count <= limit { return quoted(s) }
        var view = String.UnicodeScalarView()
        view.append(contentsOf: scalars.prefix(limit))
        return quoted(String(view)) + "…"
    }

    private static func hex(_ value: UInt32, width: Int) -> String {
        let digits = String(value, radix: 16, uppercase: true)
        return String(repeating: "0", count: max(0, width - digits.count)) + digits
    }
}

/// How CEL's `string(double)` writes a double: the shortest text that reads back as the
/// same double, in `%g` style — plain notation for decimal exponents from -4 to 5,
/// scientific (`1e+06`, `1.5e-07`) outside it. This is what cel-go prints;
/// `string(1.5)` is `"1.5"`, `string(100.0)` is `"100"`, `string(-4.5e-3)` is `"-0.0045"`.
enum CELDoubleFormat {
    static func string(_ value: Double) -> String {
        if value.isNaN { return "NaN" }
        if value.isInfinite { return value < 0 ? "-Inf" : "+Inf" }
        if value == 0 { return value.sign == .minus ? "-0" : "0" }
        // Swift's description is the shortest round-tripping decimal; take its digits
        // and decimal exponent, then lay them out in %g style.
        var text = "\(value.magnitude)"
        var exponent = 0
        if let e = text.firstIndex(where: { $0 == "e" || $0 == "E" }) {
            exponent = Int(text[text.index(after: e)...]) ?? 0
            text = String(text[..<e])
        }
        var digits: [Character] = []
        var pointPosition = 0
        var seenPoint = false
        for character in text {
            if character == "." { seenPoint = true; continue }
            digits.append(character)
            if !seenPoint { pointPosition += 1 }
        }
        // Normalise: strip leading zeros (moving the point) and trailing zeros.
        while digits.first == "0", digits.count > 1 {
            digits.removeFirst()
            pointPosition -= 1
        }
        while digits.last == "0", digits.count > 1 { digits.removeLast() }
        pointPosition += exponent
        let decimalExponent = pointPosition - 1
        let sign = value.sign == .minus ? "-" : ""
        if decimalExponent < -4 || decimalExponent >= 6 {
            var out = sign + String(digits[0])
            if digits.count > 1 { out += "." + String(digits[1...]) }
            let magnitude = abs(decimalExponent)
            out += (decimalExponent < 0 ? "e-" : "e+") + (magnitude < 10 ? "0" : "") + String(magnitude)
            return out
        }
        if pointPosition <= 0 {
            return sign + "0." + String(repeating: "0", count: -pointPosition) + String(digits)
        }
        if pointPosition >= digits.count {
            return sign + String(digits) + String(repeating: "0", count: pointPosition - digits.count)
        }
        return sign + String(digits[..<pointPosition]) + "." + String(digits[pointPosition...])
    }
}
