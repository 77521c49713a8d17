#pragma once
// Chat templates: how a family writes a conversation as text. Each turn is its role's template with
// {content} replaced by the message; the generation prompt opens the assistant's turn the model completes.
// Written in the overlay's `chat` section (configs/README.md), one template per role, instead of Jinja.
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace dlm {

enum class ChatRole { System, User, Assistant };

struct ChatMessage {
  ChatRole role = ChatRole::User;
  std::string content;
};

struct ChatTemplate {
  std::string system, user, assistant;        // each holds {content}
  std::string generation;                     // opens the assistant's turn
  std::optional<std::string> default_system;  // a system turn put first when the messages have none

  bool empty() const { return user.empty(); }
  bool operator==(const ChatTemplate&) const = default;
};

// "system", "user" or "assistant"; nullopt for any other name.
std::optional<ChatRole> chat_role(std::string_view name);

// The conversation as the model's prompt text, ending with the generation prompt. InputError when the
// messages are empty or the last one is not the user's (there would be nothing to answer).
std::string render_chat(const ChatTemplate& chat, std::span<const ChatMessage> messages);

}  // namespace dlm
