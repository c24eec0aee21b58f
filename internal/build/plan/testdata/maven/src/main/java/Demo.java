public class Demo {}
