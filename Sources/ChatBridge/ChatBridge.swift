public enum ChatBridgePlaceholder {}
