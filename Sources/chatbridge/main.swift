import ChatBridge
print("chatbridge")
