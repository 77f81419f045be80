"""Word lists masked values are drawn from, and the personal-name detector reads.

Common given names and surnames of several languages, cities and street names: what
production-shaped fake people look like. Plain data; nothing here is anyone's record."""

from __future__ import annotations

FIRST_NAMES = """
James Mary John Patricia Robert Jennifer Michael Linda William Elizabeth David Barbara
Richard Susan Joseph Jessica Thomas Sarah Charles Karen Christopher Nancy Daniel Lisa
Matthew Betty Anthony Margaret Mark Sandra Donald Ashley Steven Kimberly Paul Emily
Andrew Donna Joshua Michelle Kenneth Carol Kevin Amanda Brian Melissa George Deborah
Timothy Stephanie Ronald Rebecca Edward Sharon Jason Laura Jeffrey Cynthia Ryan Kathleen
Jacob Amy Gary Angela Nicholas Shirley Eric Anna Jonathan Brenda Stephen Pamela Larry
Emma Justin Nicole Scott Helen Brandon Samantha Benjamin Katherine Samuel Christine
Gregory Debra Alexander Rachel Frank Carolyn Patrick Janet Raymond Catherine Jack Maria
Dennis Heather Jerry Diane Tyler Ruth Aaron Julie Jose Olivia Adam Joyce Nathan Virginia
Henry Victoria Zachary Kelly Douglas Lauren Peter Christina Kyle Joan Noah Evelyn Ethan
Judith Jeremy Megan Walter Andrea Christian Cheryl Keith Hannah Roger Jacqueline Terry
Martha Austin Gloria Sean Teresa Gerald Ann Carl Sara Harold Madison Dylan Frances
Arthur Kathryn Lawrence Janice Jordan Jean Jesse Abigail Bryan Alice Billy Judy Bruce
Sophia Gabriel Grace Joe Denise Logan Amber Alan Doris Juan Marilyn Albert Danielle
Willie Beverly Elijah Isabella Wayne Theresa Randy Diana Vincent Natalie Mason Brittany
Roy Charlotte Ralph Marie Bobby Kayla Russell Alexis Bradley Lori Philip Alyssa Eugene
Lucas Mia Hugo Leon Louis Jules Camille Chloe Ines Lea Manon Sofia Giulia Luca Marco
Matteo Lorenzo Francesca Chiara Hans Klaus Jurgen Anke Katrin Lena Jonas Finn Lukas
Ingrid Astrid Lars Erik Sven Nils Freya Pablo Javier Carmen Lucia Diego Alejandro Elena
Mateo Valentina Joao Ana Pedro Beatriz Rafael Yuki Haruto Sakura Wei Li Ming Fatima Omar
Amir Layla Priya Arjun Ananya Rohan Aisha Kwame Amara Chidi Zanele Olga Ivan Dmitri
Katarzyna Piotr Tomasz Agnieszka Eva Jan Petra Marek Zoltan Anouk Daan Sem Noor Thijs
""".split()  # noqa: SIM905 -- a word list reads best as text

LAST_NAMES = """
Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez
Lopez Gonzalez Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson
White Harris Sanchez Clark Ramirez Lewis Robinson Walker Young Allen King Wright Scott
Torres Nguyen Hill Flores Green Adams Nelson Baker Hall Rivera Campbell Mitchell Carter
Roberts Gomez Phillips Evans Turner Diaz Parker Cruz Edwards Collins Reyes Stewart
Morris Morales Murphy Cook Rogers Gutierrez Ortiz Morgan Cooper Peterson Bailey Reed
Kelly Howard Ramos Kim Cox Ward Richardson Watson Brooks Chavez Wood James Bennett Gray
Mendoza Ruiz Hughes Price Alvarez Castillo Sanders Patel Myers Long Ross Foster Jimenez
Powell Jenkins Perry Russell Sullivan Bell Coleman Butler Henderson Barnes Gonzales
Fisher Vasquez Simmons Romero Jordan Patterson Alexander Hamilton Graham Reynolds
Griffin Wallace Moreno West Cole Hayes Bryant Herrera Gibson Ellis Tran Medina Aguilar
Stevens Murray Ford Castro Marshall Owens Harrison Fernandez McDonald Woods Washington
Kennedy Wells Vargas Henry Chen Freeman Webb Tucker Guzman Burns Crawford Olson Simpson
Porter Hunter Gordon Mendez Silva Shaw Snyder Mason Dixon Munoz Hunt Hicks Holmes Palmer
Wagner Black Robertson Boyd Rose Stone Salazar Fox Warren Mills Meyer Rice Schmidt
Garza Daniels Ferguson Nichols Stephens Soto Weaver Ryan Gardner Payne Grant Dunn
Muller Schneider Fischer Weber Becker Schulz Hoffmann Dubois Lefebvre Moreau Laurent
Rossi Russo Ferrari Esposito Bianchi Romano Colombo Jansen Visser Bakker Janssen
Nowak Kowalski Wisniewski Novak Svoboda Horvat Kovacs Nagy Andersson Johansson Larsson
Nielsen Hansen Pedersen Korhonen Virtanen Silva Santos Oliveira Costa Pereira Tanaka
Suzuki Sato Watanabe Wang Zhang Liu Chen Yang Huang Singh Kumar Sharma Gupta Khan Ali
Okafor Mensah Mwangi Dlamini Ivanov Petrov Sokolov Popescu Papadopoulos Yilmaz Kaya
""".split()  # noqa: SIM905 -- a word list reads best as text

CITIES = """
Springfield Riverside Fairview Franklin Greenville Bristol Clinton Georgetown Salem
Madison Arlington Ashland Burlington Manchester Milton Newport Oxford Clayton Dayton
Lexington Milford Winchester Hudson Kingston Dover Auburn Jackson Marion Chester
Hamilton Oakland Lakewood Brookfield Centerville Mount Vernon Monroe Florence Dublin
Cleveland Shelbyville Troy Aurora Columbia Bedford Concord Sheffield Weston Harlow
Ridgefield Westfield Northfield Eastwood Southport Bridgewater Lancaster Camden Eaton
""".split()  # noqa: SIM905 -- a word list reads best as text

STREETS = """
Main Street|Oak Avenue|Maple Drive|Cedar Lane|Pine Street|Elm Street|Washington Avenue|
Lake Road|Hill Street|Park Avenue|Church Street|High Street|Mill Road|River Road|
Forest Drive|Sunset Boulevard|Spring Street|Meadow Lane|Willow Way|Birch Road|
Chestnut Street|Walnut Avenue|Highland Avenue|Franklin Street|Jefferson Road|
Lincoln Avenue|Madison Street|Center Street|Railroad Avenue|School Street|Valley Road|
Orchard Lane|Ridge Road|Cherry Street|Poplar Street|Dogwood Drive|Magnolia Court|
Harbor View|Station Road|Victoria Road|Queen Street|King Street|Bridge Street|
Garden Close|Mill Lane|Kings Road|North Road|South Street|West Street|East Avenue
""".replace("\n", "").split("|")

LOREM = """
lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt
ut labore et dolore magna aliqua enim ad minim veniam quis nostrud exercitation ullamco
laboris nisi aliquip ex ea commodo consequat duis aute irure in reprehenderit voluptate
velit esse cillum fugiat nulla pariatur excepteur sint occaecat cupidatat non proident
sunt culpa qui officia deserunt mollit anim id est laborum curabitur pretium tincidunt
lacus nulla gravida orci a odio nullam varius turpis et commodo pharetra est eros
bibendum elit nec luctus magna felis sollicitudin mauris integer auctor
""".split()  # noqa: SIM905 -- a word list reads best as text
