#include "backbones/chat_template.h"

#include "engine/core/error.h"

namespace dlm {

namespace {

constexpr std::string_view kContentSlot = "{content}";

std::string fill(const std::string& turn, std::string_view content) {
  std::string text = turn;
  const size_t slot = text.find(kContentSlot);
  DLM_CHECK(slot != std::string::npos, "chat turn template without {{content}}");
  text.replace(slot, kContentSlot.size(), content);
  return text;
}

const std::string& turn_template(const ChatTemplate& chat, ChatRole role) {
  switch (role) {
    case ChatRole::System:
      return chat.system;
    case ChatRole::Assistant:
      return chat.assistant;
    case ChatRole::User:
      break;
  }
  return chat.user;
}

}  // namespace

std::optional<ChatRole> chat_role(std::string_view name) {
  if (name == "system") return ChatRole::System;
  if (name == "user") return ChatRole::User;
  if (name == "assistant") return ChatRole::Assistant;
  return std::nullopt;
}

std::string render_chat(const ChatTemplate& chat, std::span<const ChatMessage> messages) {
  if (messages.empty()) fail_input("the conversation has no messages");
  if (messages.back().role != ChatRole::User) {
    fail_input("the conversation must end with a user message (the turn the model answers)");
  }
  std::string text;
  if (chat.default_system && messages.front().role != ChatRole::System) {
    text += fill(chat.system, *chat.default_system);
  }
  for (const ChatMessage& message : messages)
    text += fill(turn_template(chat, message.role), message.content);
  return text + chat.generation;
}

}  // namespace dlm
