// YamlMap (engine/io/yaml_config.h): typed getters, unknown and duplicate keys named with the file and line,
// malformed documents, escapes, and strings written by yaml_double_quoted reading back unchanged.
#include "engine/io/yaml_config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>

#include "engine/core/error.h"
#include "tests/unit/input_error.h"

namespace dlm {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

enum class Color { Red, Green };
constexpr EnumName<Color> kColorNames[] = {{Color::Red, "red"}, {Color::Green, "green"}};

TEST(YamlMap, TypedGetters) {
  YamlMap map = YamlMap::parse(R"(
count: 12
negative: -3
plus: +4
big: 18446744073709551615
ratio: 0.25
tiny: 1e-3
whole: 5
flag: true
other_flag: False
name: hello world
quoted: "007"
ids: [1, 2, 3]
names:
  - a
  - b
color: green
)",
                               "run.yaml");
  EXPECT_EQ(map.required<int>("count"), 12);
  EXPECT_EQ(map.required<int64_t>("negative"), -3);
  EXPECT_EQ(map.required<int>("plus"), 4);
  EXPECT_EQ(map.required<uint64_t>("big"), 18446744073709551615ull);
  EXPECT_EQ(map.required<double>("ratio"), 0.25);
  EXPECT_DOUBLE_EQ(map.required<double>("tiny"), 1e-3);
  EXPECT_EQ(map.required<double>("whole"), 5.0);
  EXPECT_TRUE(map.required<bool>("flag"));
  EXPECT_FALSE(map.required<bool>("other_flag"));
  EXPECT_EQ(map.required<std::string>("name"), "hello world");
  EXPECT_EQ(map.required<std::string>("quoted"), "007");
  EXPECT_EQ(map.required<std::string>("count"), "12") << "a plain scalar reads as a string too";
  EXPECT_EQ(map.required<std::vector<int64_t>>("ids"), (std::vector<int64_t>{1, 2, 3}));
  EXPECT_EQ(map.required<std::vector<std::string>>("names"), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(map.required_enum("color", kColorNames), Color::Green);
  EXPECT_EQ(map.source(), "run.yaml");
  EXPECT_NO_THROW(map.finish());
}

TEST(YamlMap, DefaultsApplyOnlyToAbsentKeys) {
  YamlMap map = YamlMap::parse("steps: 7\n", "run.yaml");
  EXPECT_EQ(map.value_or<int>("steps", 1), 7);
  EXPECT_EQ(map.value_or<int>("seed", 42), 42);
  EXPECT_EQ(map.optional<double>("temperature"), std::nullopt);
  EXPECT_EQ(map.enum_or("color", Color::Red, kColorNames), Color::Red);
  EXPECT_FALSE(map.has("block_length"));
  EXPECT_TRUE(map.has("steps"));
  EXPECT_EQ(input_error_of([&] { map.required<int>("gen_length"); }),
            "run.yaml: gen_length: required key is missing");
}

TEST(YamlMap, WrongTypesAreNamed) {
  YamlMap root = YamlMap::parse(R"(sampler:
  steps: abc
  quoted: "3"
  flag: yes
  ratio: inf
  empty:
  list: [1, x]
  nested: {a: 1}
  small: 3000000000
  seed: -1
  hex: 0x10
)",
                                "run.yaml");
  YamlMap sampler = root.map("sampler");
  EXPECT_EQ(input_error_of([&] { sampler.required<int>("steps"); }),
            "run.yaml: sampler.steps: expected an integer, got 'abc' (line 2)");
  EXPECT_EQ(input_error_of([&] { sampler.required<int>("quoted"); }),
            "run.yaml: sampler.quoted: expected an integer, got string '3' (line 3)");
  EXPECT_EQ(input_error_of([&] { sampler.required<bool>("flag"); }),
            "run.yaml: sampler.flag: expected true or false, got 'yes' (line 4)");
  EXPECT_EQ(input_error_of([&] { sampler.required<double>("ratio"); }),
            "run.yaml: sampler.ratio: expected a number, got 'inf' (line 5)");
  EXPECT_EQ(input_error_of([&] { sampler.value_or<int>("empty", 3); }),
            "run.yaml: sampler.empty: expected an integer, got null (line 6)");
  EXPECT_EQ(input_error_of([&] { sampler.required<std::vector<int>>("list"); }),
            "run.yaml: sampler.list[1]: expected an integer, got 'x' (line 7)");
  EXPECT_EQ(input_error_of([&] { sampler.required<std::string>("nested"); }),
            "run.yaml: sampler.nested: expected a string, got a map (line 8)");
  EXPECT_EQ(input_error_of([&] { sampler.required<int>("small"); }),
            "run.yaml: sampler.small: 3000000000 is out of range for a 32-bit integer (line 9)");
  EXPECT_EQ(input_error_of([&] { sampler.required<uint64_t>("seed"); }),
            "run.yaml: sampler.seed: expected a non-negative integer, got '-1' (line 10)");
  EXPECT_EQ(input_error_of([&] { sampler.required<int>("hex"); }),
            "run.yaml: sampler.hex: expected an integer, got '0x10' (line 11)");
  EXPECT_EQ(input_error_of([&] { sampler.required<std::vector<int>>("steps"); }),
            "run.yaml: sampler.steps: expected a sequence, got 'abc' (line 2)");
}

TEST(YamlMap, LongValuesAreShownAbbreviatedWithoutSplittingACharacter) {
  // 39 ASCII characters, then two-byte 'é's: the cut after 40 characters falls between the bytes of the 21st.
  YamlMap map = YamlMap::parse("steps: " + std::string(39, 'x') + "ééé\n", "run.yaml");
  EXPECT_EQ(input_error_of([&] { map.required<int>("steps"); }),
            "run.yaml: steps: expected an integer, got '" + std::string(39, 'x') + "é...' (line 1)");
}

TEST(YamlMap, BadEnumValueListsTheAllowedOnes) {
  YamlMap map = YamlMap::parse("color: blue\nshade: [red]\n", "paint.yaml");
  EXPECT_EQ(input_error_of([&] { map.required_enum("color", kColorNames); }),
            "paint.yaml: color: expected one of red, green; got 'blue' (line 1)");
  EXPECT_EQ(input_error_of([&] { map.enum_or("shade", Color::Red, kColorNames); }),
            "paint.yaml: shade: expected one of red, green; got a sequence (line 2)");
  EXPECT_EQ(input_error_of([&] { map.required_enum("tint", kColorNames); }),
            "paint.yaml: tint: required key is missing (one of red, green)");
}

TEST(YamlMap, UnknownKeysAreRejectedWithNameFileAndLine) {
  YamlMap root = YamlMap::parse("seed: 1\nstpes: 4\n", "run.yaml");
  root.value_or<int>("seed", 0);
  root.value_or<int>("steps", 0);
  EXPECT_EQ(input_error_of([&] { root.finish(); }),
            "run.yaml: unknown key 'stpes' (line 2; known keys: seed, steps)");
}

TEST(YamlMap, UnknownKeysInNestedMapsAndListsAreRejected) {
  const char* text = R"(sampler:
  steps: 4
  tempreature: 0.5
)";
  YamlMap root = YamlMap::parse(text, "run.yaml");
  YamlMap sampler = root.map("sampler");
  sampler.value_or<int>("steps", 0);
  sampler.value_or<double>("temperature", 0);
  EXPECT_EQ(input_error_of([&] { root.finish(); }),
            "run.yaml: unknown key 'sampler.tempreature' (line 3; known keys: steps, temperature)");

  YamlMap models = YamlMap::parse("models:\n  - name: a\n  - name: b\n    size: 3\n", "models.yaml");
  std::vector<YamlMap> list = models.map_list("models");
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[1].required<std::string>("name"), "b");
  list[0].required<std::string>("name");
  EXPECT_EQ(input_error_of([&] { models.finish(); }),
            "models.yaml: unknown key 'models[1].size' (line 4; known keys: name)");

  YamlMap unread = YamlMap::parse("a: 1\n", "x.yaml");
  EXPECT_EQ(input_error_of([&] { unread.finish(); }),
            "x.yaml: unknown key 'a' (line 1; no keys are allowed here)");
}

TEST(YamlMap, SectionsAndLists) {
  YamlMap root = YamlMap::parse("sampler: 3\nempty:\nlist: [1, {a: 1}]\n", "run.yaml");
  EXPECT_EQ(input_error_of([&] { root.map("sampler"); }),
            "run.yaml: sampler: expected a map, got '3' (line 1)");
  EXPECT_EQ(input_error_of([&] { root.map("absent"); }), "run.yaml: absent: required section is missing");
  EXPECT_EQ(root.optional_map("absent"), std::nullopt);
  YamlMap empty = root.map("empty");  // an empty section is an empty map
  EXPECT_EQ(empty.value_or<int>("x", 5), 5);
  EXPECT_EQ(empty.path("x"), "empty.x");
  EXPECT_EQ(input_error_of([&] { root.map_list("list"); }),
            "run.yaml: list[0]: expected a map, got '1' (line 3)");
  EXPECT_EQ(input_error_of([&] { root.map_list("nothing"); }), "run.yaml: nothing: required list is missing");
}

TEST(YamlMap, FailAtLocatesTheKey) {
  YamlMap root = YamlMap::parse("a: 1\nsampler:\n  steps: 0\n", "run.yaml");
  YamlMap sampler = root.map("sampler");
  EXPECT_EQ(input_error_of([&] { sampler.fail_at("steps", "must be at least 1, got 0"); }),
            "run.yaml: sampler.steps: must be at least 1, got 0 (line 3)");
  EXPECT_EQ(input_error_of([&] { sampler.fail_at("absent", "is needed"); }),
            "run.yaml: sampler.absent: is needed (line 2)");  // the section's own line
}

TEST(YamlMap, MalformedDocuments) {
  EXPECT_EQ(input_error_of([] { YamlMap::parse("a: [1, 2\n", "bad.yaml"); }).find("bad.yaml: invalid YAML: "),
            0u);
  EXPECT_THAT(input_error_of([] { YamlMap::parse("a: 1\n b: 2\n", "bad.yaml"); }),
              AllOf(HasSubstr("bad.yaml: invalid YAML"), HasSubstr("line 2")));
  EXPECT_EQ(input_error_of([] { YamlMap::parse("- 1\n- 2\n", "list.yaml"); }),
            "list.yaml: the top level must be a map of keys, got a sequence");
  EXPECT_EQ(input_error_of([] { YamlMap::parse("just text", "text.yaml"); }),
            "text.yaml: the top level must be a map of keys, got 'just text'");
  EXPECT_EQ(input_error_of([] { YamlMap::parse("a: 1\n---\nb: 2\n", "two.yaml"); }),
            "two.yaml: holds 2 YAML documents; a config is a single document");
  EXPECT_EQ(input_error_of([] { YamlMap::parse("a: 1\nb: 2\na: 3\n", "dup.yaml"); }),
            "dup.yaml: a: duplicate key (first on line 1) (line 3)");
  // A section is checked when it is read.
  EXPECT_EQ(input_error_of([] { YamlMap::parse("s:\n  k: 1\n  k: 2\n", "dup.yaml").map("s"); }),
            "dup.yaml: s.k: duplicate key (first on line 2) (line 3)");
  EXPECT_EQ(input_error_of([] { YamlMap::parse("? [1, 2]\n: x\n", "key.yaml"); }),
            "key.yaml: top level: keys must be strings, got a sequence (line 1)");
  EXPECT_EQ(input_error_of([] { YamlMap::parse("a: 1\nb: \"x\xff\"\n", "bytes.yaml"); }),
            "bytes.yaml: invalid UTF-8 at byte 10 (line 2)");
  EXPECT_EQ(input_error_of([] { YamlMap::parse("a: \xc0\x80\n", "overlong.yaml"); }),
            "overlong.yaml: invalid UTF-8 at byte 3 (line 1)");
  EXPECT_EQ(input_error_of([] { YamlMap::parse(std::string("a: \"x\0\"\n", 8), "nul.yaml"); }),
            "nul.yaml: character U+0000 at byte 5 (line 1) is not allowed in YAML");
  EXPECT_EQ(YamlMap::parse("name: \"Grüße 🙂\"\n", "utf8.yaml").required<std::string>("name"),
            "Grüße 🙂");
  // yaml-cpp 0.7's LoadAll never returns on a stray top-level ','.
  EXPECT_EQ(input_error_of([] { YamlMap::parse(",", "comma.yaml"); }),
            "comma.yaml: invalid YAML: unexpected ',' (line 1, column 1)");
  EXPECT_EQ(input_error_of([] { YamlMap::parse("\n  ,,@8: x\n", "comma.yaml"); }),
            "comma.yaml: invalid YAML: unexpected ',' (line 2, column 3)");
  YamlMap empty = YamlMap::parse("# only a comment\n", "empty.yaml");
  EXPECT_NO_THROW(empty.finish());
}

// Every escape of YAML 1.2 decodes to the UTF-8 of its character, \N and \_ included (yaml-cpp 0.7 leaves
// those two as lone bytes), in values and in keys.
TEST(YamlMap, EscapesDecodeToUtf8) {
  YamlMap map = YamlMap::parse(
      "escapes: [\"\\N\", \"a\\_b\", \"\\L\", \"\\P\", \"\\x85\\xe9\", \"\\u00e9\\U0001F642\", "
      "\"\\0\\e\\a\"]\n"
      "\"k\\N\": 1\n",
      "escapes.yaml");
  EXPECT_EQ(map.required<std::vector<std::string>>("escapes"),
            (std::vector<std::string>{"\u0085", "a\u00a0b", "\u2028", "\u2029", "\u0085\u00e9",
                                      "\u00e9\U0001F642", std::string("\0\x1b\a", 3)}));
  EXPECT_EQ(map.required<int>("k\u0085"), 1);
}

// yaml_double_quoted writes what YamlMap reads back unchanged, whatever the characters.
TEST(YamlMap, DoubleQuotedStringsReadBackUnchanged) {
  const std::vector<std::string> texts = {"plain",
                                          "",
                                          "null",
                                          "~",
                                          "123",
                                          "a: b",
                                          "# x",
                                          "[",
                                          "\"q\"",
                                          "\\",
                                          "\t\n\r",
                                          std::string("\0\x01\x1f\x7f", 4),
                                          "\u0085",
                                          "\u00a0",
                                          "a\u2028b\u2029",
                                          "\ufeffx",
                                          "\ufdd0\ufffe\uffff\U0001fffe",
                                          "Grüße 🙂",
                                          " lead",
                                          "trail ",
                                          "\u0080\u009f"};
  for (const std::string& text : texts) {
    std::string yaml = "v: " + yaml_double_quoted(text, "v") + "\n";
    EXPECT_EQ(YamlMap::parse(yaml, "quoted.yaml").required<std::string>("v"), text) << yaml;
  }
  EXPECT_EQ(yaml_double_quoted("a\u2028\x7f\"", "v"), "\"a\\u2028\\x7f\\\"\"");
  EXPECT_EQ(input_error_of([] { yaml_double_quoted("ok\xff", "the config's model"); }),
            "the config's model: invalid UTF-8 at byte 2, which YAML cannot hold");
}

TEST(YamlMap, LoadsFilesAndNamesThem) {
  auto dir = std::filesystem::temp_directory_path() / fmt::format("dlm_yaml_{}", ::getpid());
  std::filesystem::create_directories(dir);
  std::string file = (dir / "run.yaml").string();
  std::ofstream(file) << "steps: abc\n";
  YamlMap map = YamlMap::load(file);
  EXPECT_EQ(input_error_of([&] { map.required<int>("steps"); }),
            file + ": steps: expected an integer, got 'abc' (line 1)");
  EXPECT_THAT(input_error_of([&] { YamlMap::load((dir / "absent.yaml").string()); }),
              AllOf(HasSubstr("absent.yaml"), HasSubstr("cannot open")));
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace dlm
