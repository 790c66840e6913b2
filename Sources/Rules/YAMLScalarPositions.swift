import Foundation
import Yams

/// A place in a text file: 1-based line and column, columns counted in Unicode scalars
/// (as libyaml, and so Yams' `Mark`, counts them).
struct SourcePosition: Sendable, Hashable {
    var line: Int
    var column: Int
}

/// Where each character of a YAML scalar's value was written in its file, so that a
/// problem found inside the value (a CEL syntax error at column 17 of a `when`
/// expression, a broken Mustache tag in a `template`) is reported at the line and
/// column of the file the user edits.
///
/// The value YAML hands over is not the text of the file: quotes are gone, escapes
/// (`\"`, `\n`, `\u00e9`) and `''` are decoded, line breaks are folded into spaces, block
/// scalars lose their indentation. The map is built by walking the decoded value and the
/// file together from the scalar's start mark:
///
/// - a value character equal to the file's character at the cursor is that character;
/// - in a double-quoted scalar, `\` starts an escape whose decoded character sits at the
///   backslash (`\` at the end of a line joins the lines and produces nothing);
/// - in a single-quoted scalar, `''` is one `'`;
/// - a space or line break of the value met where the file's line has nothing but
///   white space left is a folded line break: it sits at the end of that line, and the
///   walk goes on at the next line after its indentation (all leading white space for
///   plain and quoted scalars; the block's indentation, taken from its first non-blank
///   line, for `|` and `>` block scalars).
///
/// So plain and quoted one-line scalars map exactly, and so do `|` literal blocks (line
/// k of the expression is line k of the block, column c is c after the indentation).
/// `>` folded blocks map line by line: a character is found on the line it was written
/// on, at its column there. When the walk cannot follow the value (an unusual construct
/// such as an explicit indentation indicator), ``init(scalar:lines:)`` gives up and
/// callers fall back to the scalar's own position, which is never wrong by more than
/// the scalar.
struct YAMLScalarPositions: Sendable {
    /// `positions[i]` is where the i-th Unicode scalar of the value was written; one
    /// more entry, for the end of the value, follows the last character.
    private(set) var positions: [SourcePosition]

    /// The file split into lines of Unicode scalars (a trailing `\r` removed), as
    /// ``init(scalar:lines:)`` wants it.
    static func lines(of text: String) -> [[Unicode.Scalar]] {
        text.split(separator: "\n", omittingEmptySubsequences: false).map { line in
            var scalars = Array(line.unicodeScalars)
            if scalars.last == "\r" { scalars.removeLast() }
            return scalars
        }
    }

    /// Maps `scalar`'s value onto `lines`, or `nil` when the walk described above cannot
    /// follow it.
    init?(scalar: Node.Scalar, lines: [[Unicode.Scalar]]) {
        guard let mark = scalar.mark, mark.line >= 1, mark.line <= lines.count else { return nil }
        let value = Array(scalar.string.unicodeScalars)
        var walker = Walker(lines: lines, line: mark.line - 1, column: mark.column - 1, style: scalar.style)
        switch scalar.style {
        case .doubleQuoted, .singleQuoted:
            walker.column += 1 // past the opening quote
        case .literal, .folded:
            guard walker.enterBlock() else { return nil }
        case .plain, .any:
            break
        }
        var positions: [SourcePosition] = []
        positions.reserveCapacity(value.count + 1)
        for character in value {
            guard let position = walker.consume(character) else { return nil }
            positions.append(position)
        }
        positions.append(walker.position)
        self.positions = positions
    }

    /// Where the character at `line`:`column` of the value (1-based, columns in Unicode
    /// scalars, lines split at `\n`) was written; positions past the end of a line or of
    /// the value are clamped to the nearest character.
    func position(ofValueLine line: Int, column: Int, in value: String) -> SourcePosition {
        let offset = Self.scalarOffset(ofLine: line, column: column, in: value)
        return positions[min(max(offset, 0), positions.count - 1)]
    }

    /// The offset, in Unicode scalars, of `line`:`column` (1-based) within `value`,
    /// clamped to the value's end.
    static func scalarOffset(ofLine line: Int, column: Int, in value: String) -> Int {
        let scalars = Array(value.unicodeScalars)
        var offset = 0
        var currentLine = 1
        while currentLine < line, offset < scalars.count {
            if scalars[offset] == "\n" { currentLine += 1 }
            offset += 1
        }
        var remaining = max(column, 1) - 1
        while remaining > 0, offset < scalars.count, scalars[offset] != "\n" {
            offset += 1
            remaining -= 1
        }
        return offset
    }

    /// The cursor of the walk through the file.
    private struct Walker {
        let lines: [[Unicode.Scalar]]
        /// 0-based.
        var line: Int
        /// 0-based, in Unicode scalars.
        var column: Int
        let style: Node.Scalar.Style
        /// For block scalars: the number of columns of indentation removed from each line.
        var blockIndentation = 0

        init(lines: [[Unicode.Scalar]], line: Int, column: Int, style: Node.Scalar.Style) {
            self.lines = lines
            self.line = line
            self.column = column
            self.style = style
        }

        var position: SourcePosition { SourcePosition(line: line + 1, column: column + 1) }

        private var currentLine: [Unicode.Scalar] { line < lines.count ? lines[line] : [] }
        private var current: Unicode.Scalar? { column < currentLine.count ? currentLine[column] : nil }
        private var isBlock: Bool { style == .literal || style == .folded }

        /// Only white space (or nothing) left on the line. In a block scalar white space
        /// is content, so only the true end of the line counts.
        private var isAtLineEnd: Bool {
            if isBlock { return column >= currentLine.count }
            return currentLine[min(column, currentLine.count)...].allSatisfy { $0 == " " || $0 == "\t" }
        }

        /// Moves from a block scalar's header (`|`, `>-`, ...) to the first character of
        /// its content; `false` when there is no content line.
        mutating func enterBlock() -> Bool {
            var candidate = line + 1
            while candidate < lines.count, lines[candidate].allSatisfy({ $0 == " " }) { candidate += 1 }
            guard candidate < lines.count else { return false }
            blockIndentation = lines[candidate].prefix { $0 == " " }.count
            line += 1
            column = 0
            skipIndentation()
            return true
        }

        private mutating func nextLine() -> Bool {
            guard line + 1 < lines.count else { return false }
            line += 1
            column = 0
            skipIndentation()
            return true
        }

        private mutating func skipIndentation() {
            if isBlock {
                while column < blockIndentation, current == " " { column += 1 }
            } else {
                while current == " " || current == "\t" { column += 1 }
            }
        }

        /// Finds `character` of the value at or after the cursor and moves past it.
        /// Bounded: each round either consumes, or moves to a later line.
        mutating func consume(_ character: Unicode.Scalar) -> SourcePosition? {
            while line < lines.count {
                if let scalar = current {
                    if style == .doubleQuoted, scalar == "\\" {
                        let escapeStart = position
                        let length = escapeLength()
                        if length == 0 {
                            // `\` at the end of the line: the break is escaped away.
                            guard nextLine() else { return nil }
                            continue
                        }
                        column += length
                        return escapeStart
                    }
                    if style == .singleQuoted, scalar == "'", character == "'",
                       column + 1 < currentLine.count, currentLine[column + 1] == "'" {
                        let start = position
                        column += 2
                        return start
                    }
                    if scalar == character {
                        let start = position
                        column += 1
                        return start
                    }
                }
                guard isAtLineEnd else { return nil }
                let lineEnd = SourcePosition(line: line + 1, column: currentLine.count + 1)
                guard nextLine() else { return nil }
                if character == " " || character == "\n" { return lineEnd }
            }
            return nil
        }

        /// The number of characters of the escape at the cursor (a backslash), or 0 when
        /// the backslash ends the line.
        private func escapeLength() -> Int {
            guard column + 1 < currentLine.count else { return 0 }
            switch currentLine[column + 1] {
            case "x": return 4
            case "u": return 6
            case "U": return 10
            default: return 2
            }
        }
    }
}
